"""A live daemon on an emulated Bitaxe Gamma, read by real clients: pyasic's Bitaxe
backend (REST) and its cgminer RPC client see the board's temperature and fan speed,
and the board's safety state is a REST field.

The truth is the emulator's own registers (the EMC2101's diode temperature and tach,
the TPS546's READ_VIN), not the daemon's view of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.config import ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.telemetry import CgminerService, RestService, telemetry_services
from tests.daemon.conftest import PoolFactory
from tests.daemon.test_daemon_boards import board_config, emulated_gamma

T = TypeVar("T")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic.miners.bitaxe import BitAxeGamma  # type: ignore[import-untyped]
    from pyasic.rpc.cgminer import CGMinerRPCAPI  # type: ignore[import-untyped]
    from pyasic.web.espminer import ESPMinerWebAPI  # type: ignore[import-untyped]


@dataclasses.dataclass
class LiveBoard:
    daemon: Daemon
    emulator: BoardEmulator
    cgminer: CgminerService
    rest: RestService


@contextlib.asynccontextmanager
async def live_board(tmp_path: Path, pool_factory: PoolFactory) -> AsyncIterator[LiveBoard]:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        extra = "[api]\ncgminer_enabled = true\nrest_enabled = true\n"
        config = parse_config(board_config(emulator, pool, tmp_path) + extra)
        free = ListenAddress("127.0.0.1", 0)
        api = dataclasses.replace(config.api, cgminer_listen=free, rest_listen=free)
        config = dataclasses.replace(config, api=api)
        cgminer, rest = telemetry_services(config)
        assert isinstance(cgminer, CgminerService)
        assert isinstance(rest, RestService)
        daemon = Daemon(config, handle_signals=False, services=[cgminer, rest])
        task = asyncio.create_task(daemon.run())
        try:
            await wait_until("shares accepted", lambda: len(pool.accepted) >= 1, WAIT)
            await wait_until("APIs up", lambda: cgminer.ready.is_set() and rest.ready.is_set())
            yield LiveBoard(daemon, emulator, cgminer, rest)
        finally:
            daemon.request_stop()
            daemon.request_stop()
            assert await asyncio.wait_for(task, WAIT) == 0


@contextlib.asynccontextmanager
async def sampling(read: Callable[[], T]) -> AsyncIterator[list[T]]:
    """Sample ``read()`` every 10 ms while the block runs: the range of true values."""
    samples: list[T] = []

    async def sample() -> None:
        while True:
            samples.append(read())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _web(port: int) -> ESPMinerWebAPI:
    web = ESPMinerWebAPI("127.0.0.1")
    web.port = port  # pyasic builds its URLs on port 80
    return web


async def test_pyasic_reads_the_boards_temperature_and_fan_speed(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    async with live_board(tmp_path, pool_factory) as live:
        assert live.rest.server is not None
        assert live.cgminer.server is not None
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        await wait_until("fan spinning", lambda: emc.rpm > 0)
        async with sampling(lambda: (emc.external_c, emc.rpm)) as samples:
            await asyncio.sleep(0.5)  # the window includes the poll the daemon reports
            miner = BitAxeGamma("127.0.0.1")
            miner.web = _web(live.rest.server.port)
            data = await miner.get_data()
            info = await miner.web.system_info()
            rpc = CGMinerRPCAPI("127.0.0.1", live.cgminer.server.port)
            stats = (await rpc.stats())["STATS"]
            devs = (await rpc.devs())["DEVS"]
        truth_vin = tps.vin_v
    temps = [t for t, _ in samples]
    rpms = [r for _, r in samples]

    def within(value: float, truths: list[float], slack: float) -> bool:
        return min(truths) - slack <= value <= max(truths) + slack

    # pyasic's Bitaxe backend: chip_temp from "temp", fans from "fanrpm".
    assert within(data.hashboards[0].chip_temp, temps, 0.2)
    assert within(data.fans[0].speed, rpms, 0.05 * max(rpms))
    assert info["vrTemp"] > 0
    assert info["voltage"] == pytest.approx(truth_vin * 1000, rel=0.02)
    assert info["boardState"] == "mining"
    assert info["overheat_mode"] == 0
    assert 0 < info["fanspeed"] <= 100
    assert 1000 < info["coreVoltageActual"] < 1400
    # cgminer: devs temperature, stats fan and board state.
    (dev,) = devs
    assert within(dev["Temperature"], temps, 0.2)
    (board,) = [row for row in stats if "Board State" in row]
    assert board["Board State"] == "mining"
    assert within(board["fan1"], rpms, 0.05 * max(rpms))
