"""The alerts package is sans-IO: config, policy and bodies never touch a socket or a clock.

Only the daemon companion (``stratum_client.daemon.alerts``) does I/O; this keeps the
policy testable with hand-made observations and lets ``config`` import the package
without an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stratum_client" / "alerts"
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "threading", "selectors", "aiohttp", "serial"}
PROJECT_IO = {"stratum_client.daemon", "stratum_client.api", "stratum_client.config"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_alerts_modules_import_no_io(path: Path) -> None:
    imported = _imports(path)
    assert {name.split(".")[0] for name in imported} & FORBIDDEN == set()
    assert {n for n in imported if any(n.startswith(p) for p in PROJECT_IO)} == set()


def test_the_package_has_the_modules_this_test_reads() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} >= {"config.py", "policy.py", "bodies.py"}
