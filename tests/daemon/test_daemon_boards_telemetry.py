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
import json
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from live_helpers import WAIT, Watcher, wait_until

from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.config import ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.telemetry import CgminerService, RestService, telemetry_services
from tests.daemon.conftest import PoolFactory

if TYPE_CHECKING:
    from conftest import MosquittoBroker
from tests.daemon.test_daemon_boards import board_config, emulated_gamma

T = TypeVar("T")
BASE = "sct-board"

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
async def live_board(
    tmp_path: Path,
    pool_factory: PoolFactory,
    *,
    safety: str = "",
    mqtt_port: int | None = None,
    rest_token: str | None = None,
) -> AsyncIterator[LiveBoard]:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        extra = "[api]\ncgminer_enabled = true\nrest_enabled = true\n"
        if rest_token is not None:
            extra += f'rest_token = "{rest_token}"\n'
        if mqtt_port is not None:
            extra += (f"[telemetry.mqtt]\nenabled = true\nport = {mqtt_port}\n"
                      f'base_topic = "{BASE}"\ninterval = 0.2\n')  # fmt: skip
        config = parse_config(board_config(emulator, pool, tmp_path, safety) + extra)
        free = ListenAddress("127.0.0.1", 0)
        api = dataclasses.replace(config.api, cgminer_listen=free, rest_listen=free)
        config = dataclasses.replace(config, api=api)
        services = telemetry_services(config, mqtt_backoff_max=0.5)
        cgminer, rest = services[:2]
        assert isinstance(cgminer, CgminerService)
        assert isinstance(rest, RestService)
        daemon = Daemon(config, handle_signals=False, services=services)
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
    assert board["Board"] == "bitaxe-gamma"  # the board's kind; the chain is "gamma"
    assert within(board["fan1"], rpms, 0.05 * max(rpms))


async def test_board_state_transitions_in_rest_and_mqtt_with_ha_discovery(
    tmp_path: Path, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    filters = (f"{BASE}/#", "homeassistant/#")
    async with (
        live_board(tmp_path, pool_factory, safety="stall_s = 1.0", mqtt_port=broker.port) as live,
        Watcher(broker.port, *filters) as mqtt,
    ):
        topic = f"{BASE}/device/gamma/state"
        mining = await mqtt.document(topic, lambda d: d.get("board_state") == "mining")
        assert live.rest.server is not None
        web = _web(live.rest.server.port)
        before = await web.system_info()
        await wait_until("fan spinning", lambda: live.emulator.board.emc.rpm > 0)
        live.emulator.faults.fan_stalled = True
        safe = await mqtt.document(topic, lambda d: d.get("board_state") == "safe")
        after = await web.system_info()

        def discovered() -> bool:
            # live-forwarded messages carry no retain flag: the board's sensors are
            # offered after its first reading, often after this watcher subscribed
            return any(
                t.endswith("gamma_board_state/config") and payload
                for t, payload, _ in mqtt.messages
            )

        await wait_until("board state discovery", discovered)
        async with Watcher(broker.port, "homeassistant/#") as fresh:  # it was retained

            def kept() -> bool:
                return any(
                    t.endswith("gamma_board_state/config") and payload and retained
                    for t, payload, retained in fresh.messages
                )

            await wait_until("board state discovery retained", kept)
        configs = {
            t: json.loads(payload)
            for t, payload, _ in mqtt.messages
            if t.startswith("homeassistant/") and payload
        }

    assert mining["fan_rpm"] > 0
    assert mining["vr_temperature_c"] > 0
    assert mining["power_source"] == "measured"
    assert safe["board_reason"]
    assert "fan" in safe["board_reason"]
    assert (before["boardState"], before["overheat_mode"]) == ("mining", 0)
    assert (after["boardState"], after["overheat_mode"]) == ("safe", 1)
    (state_config,) = [c for t, c in configs.items() if t.endswith("gamma_board_state/config")]
    assert state_config["options"] == ["mining", "throttled", "safe", "locked_out"]
    assert state_config["state_topic"] == topic
    assert any(t.endswith("gamma_fan_rpm/config") for t in configs)
