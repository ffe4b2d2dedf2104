"""Board fixtures: an emulated Bitaxe on two ptys and the real board class driving it.

The opt-in hardware tests under ``hardware/`` run only with ``--board-port``; without it
they are not collected at all (never skipped inside the default suite). Run them as
``pytest tests/boards --board bitaxe-gamma --board-port control=/dev/ttyACM0,data=/dev/ttyACM1``
(the option belongs to this directory, so name the directory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from board_rig import Rig, open_rig

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boards", "opt-in tests against a real board")
    group.addoption("--board-port", default=None,
                    help="ports of a real board: control=PATH,data=PATH")  # fmt: skip
    group.addoption("--board", default="bitaxe-gamma", help="board kind for --board-port")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    hardware = HERE / "hardware"
    inside = collection_path == hardware or hardware in collection_path.parents
    if inside and not config.getoption("--board-port", default=None):
        return True
    return None


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await open_rig(tmp_path)
    try:
        yield rig
    finally:
        await rig.board.close()
        await rig.emulator.stop()
