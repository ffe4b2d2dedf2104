"""A DS4432U Bitaxe (Ultra 201) under the daemon: shares through its chain, the INA260's
power as the measured figure, and SIGTERM leaves its supply off and reset asserted.

The truth is the emulated board's registers (POWER_EN, the reset GPIO, the DAC code) and
the local pool's list of validated submits. POWER_EN is active low: high = supply off
(board fact sheet, ESP-Miner GPIO10).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.energy import EnergyService, StepRecord
from stratum_client.testing.pool import LocalPool
from tests.daemon.conftest import SCALE, PoolFactory
from tests.daemon.test_daemon_boards import board_config
from tests.daemon.test_daemon_boards_energy import ENERGY
from tests.daemon.test_daemon_process import daemon_process

if TYPE_CHECKING:
    from conftest import MosquittoBroker

BOARD = "bitaxe-ultra-201"
TRIM_1V2 = 0xC6
"""DS4432U OUT0 for 1.2 V, the Ultra's default (fact sheet worked example)."""


@contextlib.asynccontextmanager
async def emulated_ultra(directory: Path) -> AsyncIterator[BoardEmulator]:
    emulator = BoardEmulator(BOARD, directory / "control", directory / "data",
                             difficulty_scale=SCALE)  # fmt: skip
    async with emulator:
        yield emulator


def dac_config(emulator: BoardEmulator, pool: LocalPool, state_dir: Path) -> str:
    text = board_config(emulator, pool, state_dir)
    assert 'board = "bitaxe-gamma"' in text
    return text.replace('board = "bitaxe-gamma"', f'board = "{BOARD}"')


def powered(emulator: BoardEmulator) -> bool:
    board = emulator.board
    return board.supply_enabled and board.reset_released and board.dac.out0 == TRIM_1V2


def assert_off(emulator: BoardEmulator) -> None:
    assert not emulator.board.supply_enabled, "supply still enabled (POWER_EN low)"
    assert not emulator.board.reset_released, "reset released"
    assert not emulator.board.chain_powered


async def test_the_board_mines_and_its_power_is_the_ina260s(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_ultra(tmp_path) as emulator:
        daemon = Daemon(parse_config(dac_config(emulator, pool, tmp_path)), handle_signals=False)
        task = asyncio.create_task(daemon.run())
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 3, WAIT)
        assert powered(emulator)
        board = daemon.boards["gamma"]
        await wait_until("a reading", lambda: board.status is not None, WAIT)
        assert board.status is not None
        assert board.status.as_dict()["state"] == "mining"
        readings = board.status.readings
        assert readings is not None
        assert readings.power_w.ok
        assert (readings.power_w.value or 0.0) > 10.0  # the clocked chip, through the INA260
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        assert_off(emulator)
    assert pool.rejected == []


async def test_the_energy_governor_takes_the_ina260_power_as_measured(
    tmp_path: Path, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    pool = await pool_factory()
    async with emulated_ultra(tmp_path) as emulator:
        text = dac_config(emulator, pool, tmp_path) + ENERGY.format(port=broker.port)
        config = parse_config(text, base_dir=tmp_path)
        steps: list[StepRecord] = []
        daemon = Daemon(config, handle_signals=False,
                        services=[EnergyService(config, on_step=steps.append)])  # fmt: skip
        task = asyncio.create_task(daemon.run())

        def measured() -> bool:
            return any(s.decision.per_device["gamma"].measured for s in steps)

        await wait_until("a measured step", measured, WAIT)
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 1, WAIT)
        watts = emulator.board.ina.watts
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
    last = next(s for s in reversed(steps) if s.decision.per_device["gamma"].measured)
    assert last.decision.per_device["gamma"].power_w == pytest.approx(watts, rel=0.25)


async def test_sigterm_to_a_daemon_process_leaves_the_supply_off(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_ultra(tmp_path) as emulator:
        path = tmp_path / "stratum-client.toml"
        path.write_text(dac_config(emulator, pool, tmp_path))
        async with daemon_process(path) as daemon:
            await daemon.wait_until("shares accepted", lambda: len(pool.accepted) >= 2)
            assert powered(emulator)
            daemon.process.send_signal(signal.SIGTERM)
            assert await daemon.exit_status() == 0
        emulator.update()
        assert_off(emulator)
        reports = daemon.logged("board off")
        assert reports
        assert all(r.get("vout", r.get("core")) == "off" for r in reports)
