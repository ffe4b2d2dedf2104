"""The energy cores stay sans-IO: no asyncio, no clock, no sockets, no MQTT client.

``ledger.py`` holds the SQLite shell next to its accumulator, so it may use sqlite3 but
still never reads the clock; only ``mqtt_signals.py`` touches the network.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stratum_client" / "energy"
IO = {"asyncio", "time", "socket", "selectors", "ssl", "aiomqtt", "paho", "sqlite3", "threading"}
RULES = {
    "signals.py": IO,
    "power.py": IO,
    "governor.py": IO,
    "config.py": IO,
    "ledger.py": IO - {"sqlite3"},
}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "time", "perf_counter"}


def _imports(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _clock_calls(tree: ast.AST) -> list[str]:
    return [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    ]


@pytest.mark.parametrize("name", sorted(RULES))
def test_core_module_does_no_io(name: str) -> None:
    tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
    assert not _imports(tree) & RULES[name]
    assert _clock_calls(tree) == []
