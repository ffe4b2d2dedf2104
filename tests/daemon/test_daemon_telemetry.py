"""The live daemon seen through its telemetry: cgminer API, REST API and MQTT.

A real daemon mines on emulated chains (ptys, real hashing) against a LocalPool, with
the companions :func:`telemetry_services` builds from its config: the cgminer and REST
APIs on free loopback ports and MQTT on a real mosquitto. The truths are independent of
the APIs: the pool's list of validated shares and its URL, the emulator's own record of
bytes it received from the host and the frequency its PLL registers were set to.
Clients are real too: pyasic's cgminer RPC client and its ESP-Miner web client, and an
aiomqtt subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from live_helpers import WAIT, Watcher, wait_until

from stratum_client.api.model import MiningState
from stratum_client.config import Config, ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.chain import ChainState
from stratum_client.daemon.telemetry import (
    COMMAND_HOLD,
    CgminerService,
    DaemonControl,
    MqttService,
    RestService,
    StateBuilder,
    telemetry_services,
)
from stratum_client.errors import InputError
from stratum_client.secrets import Secret
from stratum_client.testing.pool import LocalPool

if TYPE_CHECKING:
    from conftest import MosquittoBroker

    from tests.daemon.conftest import Emulated, PoolFactory

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic.rpc.cgminer import CGMinerRPCAPI  # type: ignore[import-untyped]
    from pyasic.web.espminer import ESPMinerWebAPI  # type: ignore[import-untyped]

BASE = "sct-daemon"


# --------------------------------------------------------------------------- the rig


@dataclass
class Live:
    """A daemon mining with its telemetry companions."""

    daemon: Daemon
    task: asyncio.Task[int]
    pool: LocalPool
    emulated: Emulated
    cgminer: CgminerService
    rest: RestService
    mqtt: MqttService

    async def wait(self, what: str, predicate: Callable[[], bool]) -> None:
        def check() -> bool:
            if self.task.done():
                raise AssertionError(f"daemon ended ({self.task.result()}) while waiting: {what}")
            return predicate()

        await wait_until(what, check)

    async def shares(self, count: int) -> None:
        target = len(self.pool.accepted) + count
        await self.wait(f"{count} more accepted shares", lambda: len(self.pool.accepted) >= target)

    def work_sent(self) -> dict[str, int]:
        return {chain.name: chain.work_sent for chain in self.daemon.snapshot().chains}

    def bytes_in(self) -> dict[str, int]:
        """Bytes each emulated chain received from the host (the emulator's own count)."""
        return {name: server.bytes_in for name, server in self.emulated.servers.items()}

    async def settle(self) -> None:
        """Stop the chips hashing and wait until every share found has its answer."""
        for chain in self.emulated.chains.values():
            chain.faults.dead_chips = frozenset(range(chain.chip_count))

        def settled() -> bool:
            d = self.daemon.snapshot().dispatch
            return d.in_flight == 0 and d.pending == 0 and d.accepted == len(self.pool.accepted)

        # A nonce already on its way from a chip when the cores died still arrives: settled
        # means the accepted count held still for a while, not merely balanced once.
        last, steady = -1, 0
        while steady < 10:
            await self.wait("share outcomes settled", settled)
            count = len(self.pool.accepted)
            steady = steady + 1 if count == last else 0
            last = count
            await asyncio.sleep(0.05)


def live_config(emulated: Emulated, pool: LocalPool, broker_port: int) -> Config:
    """The emulated chains' config with every telemetry server on (APIs on free ports)."""
    extra = (
        "[api]\ncgminer_enabled = true\nrest_enabled = true\n"
        f'[telemetry.mqtt]\nenabled = true\nport = {broker_port}\nbase_topic = "{BASE}"\n'
        "interval = 0.2\n"
    )
    config = parse_config(emulated.config([pool], extra=extra))
    free = ListenAddress("127.0.0.1", 0)  # the file format wants a real port; tests do not
    api = dataclasses.replace(config.api, cgminer_listen=free, rest_listen=free)
    return dataclasses.replace(config, api=api)


@contextlib.asynccontextmanager
async def live_daemon(
    emulated: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> AsyncIterator[Live]:
    pool = await pool_factory(job_interval=5.0)
    config = live_config(emulated, pool, broker.port)
    services = telemetry_services(config, mqtt_backoff_max=0.5)
    cgminer, rest, mqtt = services
    assert isinstance(cgminer, CgminerService)
    assert isinstance(rest, RestService)
    assert isinstance(mqtt, MqttService)
    daemon = Daemon(config, handle_signals=False, services=services)
    task = asyncio.create_task(daemon.run(), name="daemon-under-test")
    live = Live(daemon, task, pool, emulated, cgminer, rest, mqtt)
    try:
        await live.wait("APIs listening", lambda: cgminer.ready.is_set() and rest.ready.is_set())
        await live.shares(2)
        yield live
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            assert await task == 0
    finally:
        if not task.done():
            daemon.request_stop()
            daemon.request_stop()
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(WAIT):
                    await task


async def command(mqtt: Watcher, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Publish a command and return its result document."""
    await mqtt.publish(f"{BASE}/cmd/{name}", json.dumps(payload).encode())
    return await mqtt.result(f"{BASE}/cmd/result", payload["request_id"])


# --------------------------------------------------------------------------- services


def test_services_follow_the_config(emulated_chains: Emulated, local_pool: LocalPool) -> None:
    pool = local_pool
    plain = parse_config(emulated_chains.config([pool]))
    assert telemetry_services(plain) == []
    on = live_config(emulated_chains, pool, 1883)
    kinds = [type(service) for service in telemetry_services(on)]
    assert kinds == [CgminerService, RestService, MqttService]
    only_rest = dataclasses.replace(
        on,
        api=dataclasses.replace(on.api, cgminer_enabled=False),
        telemetry=dataclasses.replace(
            on.telemetry, mqtt=dataclasses.replace(on.telemetry.mqtt, enabled=False)
        ),
    )
    assert [type(service) for service in telemetry_services(only_rest)] == [RestService]


# --------------------------------------------------------------------------- APIs


async def test_pyasic_clients_read_the_live_daemon(
    emulated_chains: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    async with live_daemon(emulated_chains, pool_factory, broker) as live:
        await live.shares(3)
        await live.settle()
        accepted = len(live.pool.accepted)
        assert live.cgminer.server is not None
        assert live.rest.server is not None
        rpc = CGMinerRPCAPI("127.0.0.1", live.cgminer.server.port)
        summary = (await rpc.summary())["SUMMARY"][0]
        pools = (await rpc.pools())["POOLS"]
        devs = (await rpc.devs())["DEVS"]
        web = ESPMinerWebAPI("127.0.0.1")
        web.port = live.rest.server.port  # pyasic builds its URLs on port 80
        info = await web.system_info()
        asic = await web.asic_info()

    assert summary["MHS av"] > 0
    assert summary["Accepted"] == accepted
    assert sum(dev["Accepted"] for dev in devs) == accepted
    assert {dev["Name"] if "Name" in dev else dev["ASC"] for dev in devs}  # two chains listed
    assert len(devs) == 2
    assert [pool["URL"] for pool in pools] == [live.pool.url]
    assert pools[0]["Accepted"] == accepted
    assert pools[0]["Status"] == "Alive"

    assert info["hashRate"] > 0
    assert info["sharesAccepted"] == accepted
    assert (info["stratumURL"], info["stratumPort"]) == (live.pool.host, live.pool.port)
    # a mixed host names both models, each with its own chip count
    assert asic["ASICModel"] == "BM1366+BM1397"
    assert [m["model"] for m in asic["asicModels"]] == ["BM1366", "BM1397"]


async def test_control_refuses_bad_requests_and_adds_a_pool(
    emulated_chains: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    async with live_daemon(emulated_chains, pool_factory, broker) as live:
        control = DaemonControl(live.daemon)
        with pytest.raises(InputError, match="no chain named 'nope'"):
            await control.set_frequency("nope", 400)
        with pytest.raises(InputError, match="frequency"):
            await control.set_frequency("a", 1e9)
        with pytest.raises(InputError, match="no pool 7"):
            await control.switch_pool(7)
        with pytest.raises(InputError, match="stratum URL"):
            await control.add_pool("http://example.org:80", "w", Secret("x"))
        index = await control.add_pool(live.pool.url, "other.w", Secret("x"))
        statuses = live.daemon.manager.statuses()
        state = StateBuilder(live.daemon)()
    assert index == 1
    assert [s.user for s in statuses] == ["demo.w", "other.w"]
    assert len({s.name for s in statuses}) == 2  # same URL, a distinct name
    assert [p.url for p in state.pools] == [live.pool.url, live.pool.url]
    assert state.devices[0].power_w is not None
    assert state.devices[0].power_w > 0


# --------------------------------------------------------------------------- MQTT


async def test_mqtt_state_discovery_and_frequency_command(
    emulated_chains: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    filters = (f"{BASE}/#", "homeassistant/#")
    async with (
        live_daemon(emulated_chains, pool_factory, broker) as live,
        Watcher(broker.port, *filters) as mqtt,
    ):
        await live.shares(2)
        floor = len(live.pool.accepted)
        state = await mqtt.document(f"{BASE}/state", lambda d: d["accepted"] >= floor)
        device = await mqtt.document(f"{BASE}/device/a/state", lambda d: True)
        result = await command(
            mqtt, "set_frequency", {"device": "a", "mhz": 400, "request_id": "f1"}
        )
        runner = live.daemon.runner("a")
        driver_mhz = runner.driver.frequency_mhz if runner.driver else None
        chip_mhz = [chip.mhz for chip in live.emulated.chains["a"].chips]
        reported = await mqtt.document(
            f"{BASE}/device/a/state", lambda d: d["frequency_mhz"] == result["result"]["mhz"]
        )
        configs = [
            (topic, json.loads(payload))
            for topic, payload, retained in mqtt.messages
            if topic.startswith("homeassistant/") and payload and retained
        ]

    assert isinstance(state["hashrate_1m"], float)  # GH/s to 3 places: ~0 when emulated
    assert state["pool_url"] == live.pool.url
    assert state["mining"] == "running"
    assert state["chips"] == 5
    assert device["model"] == "BM1366"
    assert device["chips"] == 4
    assert result["ok"] is True, result
    reached = result["result"]["mhz"]
    assert reached == pytest.approx(400, abs=5)
    assert driver_mhz == pytest.approx(reached)
    assert chip_mhz == pytest.approx([reached] * 4, abs=0.5)  # what the chips' PLLs hold
    assert reported["frequency_mhz"] == pytest.approx(reached)
    hashrate = [
        c for t, c in configs if t.endswith("/config") and c.get("unit_of_measurement") == "GH/s"
    ]
    assert hashrate, [t for t, _ in configs]
    assert all(c["state_topic"].startswith(BASE) for c in hashrate)
    assert any(t.startswith("homeassistant/switch/") for t, _ in configs)


async def test_mqtt_pause_stops_work_to_the_chains_and_resume_restarts_it(
    emulated_chains: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    async with (
        live_daemon(emulated_chains, pool_factory, broker) as live,
        Watcher(broker.port, f"{BASE}/#") as mqtt,
    ):
        paused = await command(mqtt, "pause", {"reason": "test", "request_id": "p1"})
        await live.wait(
            "chains paused",
            lambda: all(c.state is ChainState.PAUSED for c in live.daemon.snapshot().chains),
        )
        state = await mqtt.document(f"{BASE}/state", lambda d: d["mining"] == "paused")
        sent, received = live.work_sent(), live.bytes_in()
        # Watch for several job intervals: not one work unit may reach the chips.
        intervals = [r.driver.job_interval for r in live.daemon.runners if r.driver]
        await asyncio.sleep(max(1.0, 5 * max(intervals)))
        still_sent, still_received = live.work_sent(), live.bytes_in()
        paused_by = {c.name: c.paused_by for c in live.daemon.snapshot().chains}

        resumed = await command(mqtt, "resume", {"request_id": "r1"})
        await live.wait(
            "work flowing again", lambda: all(live.work_sent()[n] > sent[n] for n in sent)
        )
        await live.shares(2)
        after = StateBuilder(live.daemon)()

    assert paused["ok"] is True
    assert resumed["ok"] is True
    assert state["pause_reason"] == COMMAND_HOLD
    assert paused_by == {"a": (COMMAND_HOLD,), "b": (COMMAND_HOLD,)}
    assert still_sent == sent
    assert still_received == received  # the emulated chips heard nothing from the host
    assert after.mining is MiningState.RUNNING
    assert all(live.bytes_in()[n] > received[n] for n in received)


async def test_broker_restart_leaves_mining_alone_and_telemetry_returns(
    emulated_chains: Emulated, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    async with live_daemon(emulated_chains, pool_factory, broker) as live:
        assert live.mqtt.telemetry is not None
        telemetry = live.mqtt.telemetry
        await live.wait("MQTT connected", telemetry.connected.is_set)
        await broker.astop()
        await live.wait("MQTT noticed the outage", lambda: not telemetry.connected.is_set())
        before = len(live.pool.accepted)
        await live.shares(3)  # mining goes on with no broker
        down_accepted = len(live.pool.accepted)
        broker_was_down = not broker.running
        await broker.astart()  # no persistence: every retained message is gone
        await live.wait("MQTT reconnected", lambda: telemetry.connections >= 2)
        async with Watcher(broker.port, f"{BASE}/state", f"{BASE}/availability") as mqtt:
            state = await mqtt.document(f"{BASE}/state", lambda d: d["accepted"] >= down_accepted)
            await wait_until(
                "availability online",
                lambda: any(
                    t.endswith("availability") and p == b"online" for t, p, _ in mqtt.messages
                ),
            )

    assert broker_was_down
    assert down_accepted >= before + 3
    assert state["mining"] == "running"
