"""The sans-IO rule: protocol, work and chip-codec modules never import I/O machinery."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_DIRS = ("stratum_client/protocol", "stratum_client/work", "drivers/bm13xx")
CORE_EXEMPT = {"drivers/bm13xx/driver.py"}
FORBIDDEN = {"asyncio", "socket", "serial", "serial_asyncio_fast", "selectors", "ssl", "time"}


def _core_modules() -> list[Path]:
    files: list[Path] = []
    for directory in CORE_DIRS:
        files.extend(sorted((ROOT / directory).glob("*.py")))
    return [f for f in files if f.relative_to(ROOT).as_posix() not in CORE_EXEMPT]


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_core_modules() -> None:
    assert len(_core_modules()) >= 3


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_module_does_no_io(path: Path) -> None:
    assert not (_imported_roots(path) & FORBIDDEN)
