"""The board layer's sans-IO cores import no I/O machinery and never read the clock.

The codecs, the PID, the safety policy, the thermal model, the register models and the
emulated bridge take bytes, readings and ``now`` in; only the shells (the control client,
the boards, the safety task, the emulator server) touch ports and time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOARDS = Path(__file__).resolve().parents[2] / "stratum_client" / "boards"
CORES = sorted(
    [
        *(BOARDS / "codecs").glob("*.py"),
        BOARDS / "pid.py",
        BOARDS / "safety.py",
        BOARDS / "base.py",
        BOARDS / "emulator" / "board.py",
        BOARDS / "emulator" / "models.py",
        BOARDS / "emulator" / "thermal.py",
        BOARDS / "emulator" / "faults.py",
    ]
)
FORBIDDEN = {"asyncio", "socket", "serial", "serial_asyncio_fast", "selectors", "time",
             "threading", "smbus2", "gpiod", "pyudev"}  # fmt: skip
CLOCK_CALLS = {"monotonic", "time", "perf_counter", "now", "utcnow", "today"}


def _roots(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_cores_are_found() -> None:
    assert len(CORES) >= 15


@pytest.mark.parametrize("path", CORES, ids=lambda p: str(p.relative_to(BOARDS)))
def test_core_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _roots(tree) & FORBIDDEN
    calls = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr in CLOCK_CALLS]  # fmt: skip
    assert calls == []
