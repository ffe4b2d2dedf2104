"""The driver boundary: the daemon reaches chips only through ``stratum_client.asic``.

Nothing in the ``stratum_client`` package imports the built-in BM13xx driver's modules;
chip figures come from the driver class (``AsicDriver.facts``, found by the registry),
detection from ``AsicDriver.detect``. The one exception is the emulator's API, which the
``demo`` and ``emulate`` commands, the board emulator and ``stratum_client.testing`` use to
stand in for hardware. Every import is read, including those inside functions, so a lazy import
cannot slip through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "stratum_client"
DRIVER = "stratum_client_bm13xx"
EMULATOR = f"{DRIVER}.emulator"
EMULATOR_USERS = ("commands/demo.py", "commands/emulate.py", "testing/", "boards/emulator/")
"""Files (relative to the package) that may import the emulator API, and nothing else.
The board emulator puts an emulated chip chain behind an emulated board."""
KNOWN: dict[str, set[str]] = {}
"""Imports past the boundary that exist today, each with who removes it."""


def _imports(source: str) -> set[str]:
    """Every absolute module a source file imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _crossings(relative: str, source: str) -> set[str]:
    """The driver modules ``relative`` imports that it may not."""
    driver = {m for m in _imports(source) if m == DRIVER or m.startswith(f"{DRIVER}.")}
    if relative.startswith(EMULATOR_USERS):
        driver = {m for m in driver if m != EMULATOR and not m.startswith(f"{EMULATOR}.")}
    return driver


def _package_files() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


FILES = _package_files()


def test_the_check_catches_a_crossing() -> None:
    source = (
        "from stratum_client_bm13xx.chips import MODELS\n"
        "def later():\n    import stratum_client_bm13xx.pll\n"
        "from stratum_client_bm13xx.emulator.chain import EmulatedChain\n"
        "from stratum_client.asic.registry import chip_facts\n"
    )
    assert _crossings("api/rest.py", source) == {
        "stratum_client_bm13xx.chips",
        "stratum_client_bm13xx.pll",
        "stratum_client_bm13xx.emulator.chain",
    }
    assert _crossings("commands/demo.py", source) == {
        "stratum_client_bm13xx.chips",
        "stratum_client_bm13xx.pll",
    }


def test_the_package_is_read() -> None:
    assert {"api/rest.py", "energy/power.py", "daemon/telemetry.py"} <= set(FILES)
    assert "stratum_client_bm13xx.emulator.server" in _imports(FILES["commands/demo.py"])


@pytest.mark.parametrize("relative", sorted(FILES))
def test_nothing_outside_the_driver_imports_its_internals(relative: str) -> None:
    assert _crossings(relative, FILES[relative]) <= KNOWN.get(relative, set())


def test_every_known_crossing_still_exists() -> None:
    stale = {f: m - _crossings(f, FILES[f]) for f, m in KNOWN.items()}
    assert {f: m for f, m in stale.items() if m} == {}, "delete these from KNOWN"
