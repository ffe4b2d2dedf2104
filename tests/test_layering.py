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
    "stratum_client/daemon/dispatch_records.py",
    "stratum_client/daemon/dispatch_state.py",
    "stratum_client/daemon/share_queue.py",
    "stratum_client/daemon/stats.py",
    "stratum_client/api/cgminer.py",
    "stratum_client/api/cgminer_wire.py",
    "stratum_client/api/cgminer_reads.py",
    "stratum_client/api/cgminer_writes.py",
    "stratum_client/api/ratelimit.py",
    "stratum_client/api/rest.py",
    "stratum_client/api/board_fields.py",
    "stratum_client/api/rest_http.py",
    "stratum_client/api/rest_writes.py",
    "stratum_client/api/rest_history.py",
    "stratum_client/api/rest_summary.py",
    "stratum_client/api/rest_metrics.py",
    "stratum_client/history/sample.py",
    "stratum_client/telemetry/topics.py",
    "stratum_client/telemetry/commands.py",
    "stratum_client/telemetry/discovery.py",
    "stratum_client/energy/config.py",
    "stratum_client/energy/signals.py",
    "stratum_client/energy/power.py",
    "stratum_client/energy/governor.py",
    "stratum_client/energy/policy.py",
    "stratum_client/energy/ledger.py",
    "stratum_client/energy/intervals.py",
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


# --------------------------------------------------------------------------- module level
# The checks above read every import in a file by its root name. Those below build the
# graph of what each module imports when it is loaded (module level, TYPE_CHECKING blocks
# and imports inside functions left out), by full module name, so a codec pulling in
# ``stratum_client.asic.transport`` or two subpackages importing each other are caught.

PACKAGES = {
    "stratum_client": ROOT / "stratum_client",
    "stratum_client_bm13xx": ROOT / "drivers" / "stratum_client_bm13xx",
}
KNOWN_CYCLES: set[frozenset[str]] = set()
# daemon -> api -> daemon (api.model on daemon.stats) was broken by a RateSource protocol;
# none is left. A new one must be fixed, or listed here with who removes it.
"""Import cycles between subpackages that exist today, each with who removes it."""
KNOWN_IO_IMPORTS: dict[str, set[str]] = {
    # The driver-boundary work moves these apart (then delete the entries).
    **{
        f"stratum_client_bm13xx.{chip}": {"stratum_client_bm13xx.driver"}
        for chip in ("bm1366", "bm1368", "bm1370", "bm1397")
    },
    # api.model imports asyncio for one helper; the operator-HTTP work moves it out.
    **{
        name: {"stratum_client.api.model"}
        for name in (
            "stratum_client.api.cgminer",
            "stratum_client.api.cgminer_reads",
            "stratum_client.api.cgminer_writes",
            "stratum_client.api.rest",
            "stratum_client.api.rest_writes",
            "stratum_client.api.rest_history",
            "stratum_client.api.rest_summary",
            "stratum_client.api.rest_metrics",
            "stratum_client.telemetry.topics",
            "stratum_client.telemetry.commands",
            "stratum_client.telemetry.discovery",
            "stratum_client.api.board_fields",
        )
    },
}
"""Core modules that import an I/O module of the project today, each with who fixes it."""


def _module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, directory in PACKAGES.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _module_files()


def _loaded_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at import: into ``if``/``try``, not into TYPE_CHECKING."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                out += _loaded_statements(node.body)
            out += _loaded_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                out += _loaded_statements(block)
        else:
            out.append(node)
    return out


def _module_imports(
    name: str, source: str, known: set[str] | dict[str, Path], *, is_package: bool = False
) -> set[str]:
    """Full names of what module ``name`` imports at load; ``from a import b`` is ``a.b``
    when that is a module, else ``a``. A package's ``__init__`` anchors ``.`` at itself."""
    package = name if is_package else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in _loaded_statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                imported.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return imported


def _project_imports(name: str) -> set[str]:
    path = MODULES[name]
    package = path.name == "__init__.py"
    source = path.read_text(encoding="utf-8")
    return _module_imports(name, source, MODULES, is_package=package) & set(MODULES)


def _subpackage(module: str) -> str:
    """``stratum_client.energy.ledger`` → ``stratum_client.energy``; a top-level module
    (``stratum_client.config``) is a node of its own."""
    return ".".join(module.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _subpackage_cycles() -> set[frozenset[str]]:
    edges: dict[str, set[str]] = {}
    for name in MODULES:
        for target in _project_imports(name):
            if _subpackage(name) != _subpackage(target):
                edges.setdefault(_subpackage(name), set()).add(_subpackage(target))
    return _cycles(edges)


def _io_modules() -> set[str]:
    """Project modules that import I/O machinery when loaded."""
    io: set[str] = set()
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = _imported_roots(ast.Module(body=_loaded_statements(tree.body), type_ignores=[]))
        if roots & FORBIDDEN:
            io.add(name)
    return io


def test_module_level_imports_are_read_by_full_name() -> None:
    source = (
        "import asyncio\nfrom typing import TYPE_CHECKING\n"
        "from stratum_client import config\nfrom stratum_client.work.job import Job\n"
        "from . import crc\nfrom .emulator.server import serve\n"
        "if TYPE_CHECKING:\n    from stratum_client.daemon.app import Daemon\n"
        "try:\n    import uvloop\nexcept ImportError:\n    pass\n"
        "def later() -> None:\n    from stratum_client.asic import transport\n"
    )
    known = {"stratum_client.config", "stratum_client.work.job", "stratum_client_bm13xx.crc"}
    assert _module_imports("stratum_client_bm13xx.codec", source, known) == {
        "asyncio", "typing", "stratum_client.config", "stratum_client.work.job",
        "stratum_client_bm13xx.crc", "stratum_client_bm13xx.emulator.server", "uvloop",
    }  # fmt: skip
    init = "from . import crc\n"
    package = _module_imports("stratum_client_bm13xx", init, known, is_package=True)
    assert package == {"stratum_client_bm13xx.crc"}


def test_cycles_are_found() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert _cycles(edges) == {frozenset("abc"), frozenset("de")}
    assert _subpackage("stratum_client.energy.ledger") == "stratum_client.energy"
    assert "stratum_client.energy.config" in _project_imports("stratum_client.config")


def test_no_import_cycle_between_subpackages() -> None:
    assert _subpackage_cycles() <= KNOWN_CYCLES


def test_every_known_cycle_still_exists() -> None:
    """A cycle that is gone must leave KNOWN_CYCLES too, so it cannot come back unseen."""
    assert _subpackage_cycles() >= KNOWN_CYCLES, "delete the removed cycle from KNOWN_CYCLES"


def _core_module_names() -> list[str]:
    names = [n.removeprefix("drivers/").removesuffix(".py") for n in _core_modules()]
    return [n.removesuffix("/__init__").replace("/", ".") for n in names]


def test_the_project_has_io_modules() -> None:
    assert {"stratum_client.asic.transport", "stratum_client.mqtt_session"} <= _io_modules()
    assert set(_core_module_names()) <= set(MODULES)


@pytest.mark.parametrize("name", _core_module_names())
def test_core_module_imports_no_io_module_when_loaded(name: str) -> None:
    io = _io_modules() - KNOWN_IO_IMPORTS.get(name, set())
    assert _project_imports(name) & io == set()


def test_every_known_io_import_still_exists() -> None:
    io = _io_modules()
    stale = {n: m - _project_imports(n) & io for n, m in KNOWN_IO_IMPORTS.items()}
    assert {n: m for n, m in stale.items() if m} == {}, "delete these from KNOWN_IO_IMPORTS"
