"""The sans-IO rule: core modules never import I/O machinery and never read the clock.

Protocol, work, chip codecs, the dispatcher, the energy cores and the API/telemetry
formatters take bytes, messages and ``now`` in and return actions out; only their thin
shells (servers, connections, drivers, the MQTT clients) touch sockets, serial ports or
time. The ledger core owns its SQLite file, so it alone may import ``sqlite3``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_DIRS = ("stratum_client/protocol", "stratum_client/work", "drivers/stratum_client_bm13xx")
CORE_EXEMPT = {
    "drivers/stratum_client_bm13xx/driver.py",
    "drivers/stratum_client_bm13xx/probe.py",
}
CORE_FILES = (
    "stratum_client/daemon/dispatcher.py",
    "stratum_client/daemon/stats.py",
    "stratum_client/api/cgminer.py",
    "stratum_client/api/cgminer_wire.py",
    "stratum_client/api/cgminer_reads.py",
    "stratum_client/api/cgminer_writes.py",
    "stratum_client/api/ratelimit.py",
    "stratum_client/api/rest.py",
    "stratum_client/telemetry/topics.py",
    "stratum_client/telemetry/discovery.py",
    "stratum_client/energy/config.py",
    "stratum_client/energy/signals.py",
    "stratum_client/energy/power.py",
    "stratum_client/energy/governor.py",
    "stratum_client/energy/ledger.py",
)
FORBIDDEN = {
    "asyncio",
    "socket",
    "serial",
    "serial_asyncio_fast",
    "selectors",
    "ssl",
    "time",
    "threading",
    "aiomqtt",
    "paho",
    "sqlite3",
}
ALLOWED = {"stratum_client/energy/ledger.py": {"sqlite3"}}
CLOCK_CALLS = {"monotonic", "time", "perf_counter", "now", "utcnow", "today"}


def _core_modules() -> list[str]:
    files = [
        path.relative_to(ROOT).as_posix()
        for directory in CORE_DIRS
        for path in sorted((ROOT / directory).glob("*.py"))
    ]
    return [f for f in files if f not in CORE_EXEMPT] + list(CORE_FILES)


def _imported_roots(tree: ast.AST) -> set[str]:
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


def test_there_are_core_modules() -> None:
    assert len(_core_modules()) >= 20


@pytest.mark.parametrize("name", _core_modules())
def test_core_module_does_no_io(name: str) -> None:
    tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
    assert not _imported_roots(tree) & (FORBIDDEN - ALLOWED.get(name, set()))
    assert _clock_calls(tree) == []
