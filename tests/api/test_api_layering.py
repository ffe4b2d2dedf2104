"""The API and telemetry cores stay sans-IO: no event loop, sockets, clocks or MQTT client.

Only the shells (``*_server.py``, ``telemetry/mqtt.py``) and the interface module
(``api/model.py``, whose ``call_control`` needs a deadline) may touch those.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "stratum_client"
CORES = ("api/cgminer.py", "api/rest.py", "telemetry/topics.py", "telemetry/discovery.py")
IO = {"asyncio", "socket", "selectors", "ssl", "time", "threading", "aiomqtt", "paho"}
CLOCK_CALLS = {"monotonic", "time", "perf_counter", "now", "utcnow"}


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


@pytest.mark.parametrize("name", CORES)
def test_core_module_does_no_io(name: str) -> None:
    tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
    assert not _imports(tree) & IO
    assert _clock_calls(tree) == []
