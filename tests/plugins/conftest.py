"""Make the fake-chip plug-in under ``fakechip/`` visible the way an installed package is.

A real third-party driver is a distribution: its code on ``sys.path`` and a
``*.dist-info`` directory whose ``entry_points.txt`` names the driver class in group
``stratum_client.drivers``. The fixture builds exactly that in a temporary directory from
the plug-in's own ``pyproject.toml`` (name, version, entry points) and puts it and the
plug-in's source root on ``sys.path``, so ``importlib.metadata`` and the registry find the
driver as they would after ``pip install -e tests/plugins/fakechip``. It takes
milliseconds, needs no network or build backend, and leaves the real environment alone
(``pip install`` in a fixture would change the shared venv).
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent / "fakechip"


def write_dist_info(project_file: Path, site: Path) -> Path:
    """A ``*.dist-info`` for the project described by ``project_file``, inside ``site``."""
    project = tomllib.loads(project_file.read_text(encoding="utf-8"))["project"]
    name, version = project["name"], project["version"]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines: list[str] = []
    for group, entries in project.get("entry-points", {}).items():
        lines += [f"[{group}]", *(f"{key} = {value}" for key, value in entries.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return info


@pytest.fixture
def fakechip_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake-chip plug-in, 'installed' for this test only; yields its dist-info."""
    info = write_dist_info(PLUGIN / "pyproject.toml", tmp_path / "site")
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(info.parent))
    yield info
    for module in [m for m in sys.modules if m == "sc_fakechip" or m.startswith("sc_fakechip.")]:
        del sys.modules[module]
