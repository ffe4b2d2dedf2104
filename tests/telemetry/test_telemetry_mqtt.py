"""MQTT telemetry against a real mosquitto: discovery, state, commands, outages, auth, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Self

from live_helpers import Watcher, wait_until
from structlog.testing import capture_logs

from stratum_client.api.model import MinerState
from stratum_client.config import MqttConfig
from stratum_client.secrets import Secret
from stratum_client.telemetry import MqttTelemetry
from stratum_client.telemetry.topics import Topics

if TYPE_CHECKING:
    from tests.conftest import MosquittoBroker
    from tests.telemetry.conftest import RecordingControl

BASE = "stratum-client/rig1"
T = Topics(BASE)
NODE = "stratum-client_rig1"


def fast(config: MqttConfig, provider: Callable[[], MinerState], control: object) -> MqttTelemetry:
    """Telemetry with short backoff, so outage tests take seconds, not minutes."""
    return MqttTelemetry(
        config, provider, control,  # type: ignore[arg-type]
        backoff_initial=0.05, backoff_max=0.3, publish_timeout=2.0,
    )  # fmt: skip


def mqtt_config(broker: MosquittoBroker, **changes: Any) -> MqttConfig:
    config = MqttConfig(
        enabled=True, host="127.0.0.1", port=broker.port, base_topic=BASE, interval=0.2
    )
    return dataclasses.replace(config, **changes)


@contextlib.asynccontextmanager
async def running(telemetry: MqttTelemetry) -> AsyncIterator[MqttTelemetry]:
    task = asyncio.create_task(telemetry.run(), name="telemetry-under-test")
    try:
        yield telemetry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    await wait_until("condition", check, within)


async def test_availability_discovery_state_and_config(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker), lambda: state, control)
    async with running(telemetry), Watcher(broker.port, f"{BASE}/#", "homeassistant/#") as live:
        await eventually(lambda: live.has(T.state) and live.has(T.device("ultra")))
        assert live.payloads(T.availability)[-1] == b"online"
        temperature = live.latest(f"homeassistant/sensor/{NODE}/ultra_temperature/config")
        assert temperature["unit_of_measurement"] == "°C"
        assert temperature["device_class"] == "temperature"
        assert temperature["state_class"] == "measurement"
        power = live.latest(f"homeassistant/sensor/{NODE}/power/config")
        assert (power["unit_of_measurement"], power["device_class"]) == ("W", "power")
        energy = live.latest(f"homeassistant/sensor/{NODE}/energy/config")
        assert (energy["device_class"], energy["state_class"]) == ("energy", "total_increasing")
        assert live.latest(T.state)["hashrate_1m"] == 500.0
        assert live.latest(T.device("ultra"))["temperature_c"] == 58.2
        assert live.latest(T.config)["hostname"] == "rig1"
        # A client arriving later gets the retained documents at once.
        async with Watcher(broker.port, f"{BASE}/#", "homeassistant/#") as late:
            await eventually(lambda: late.has(T.state) and late.has(T.config))
            retained = {topic for topic, _, flag in late.messages if flag}
        assert {T.availability, T.state, T.config, T.device("ultra")} <= retained
        assert f"homeassistant/switch/{NODE}/mining/config" in retained
        assert T.result not in retained
        assert T.event not in retained


async def test_push_publishes_the_newest_state_without_waiting(
    broker: MosquittoBroker, make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker, interval=60.0), make_state, control)
    async with running(telemetry), Watcher(broker.port, T.state) as live:
        await eventually(lambda: live.has(T.state))
        for accepted in range(43, 60):
            telemetry.push(make_state(accepted=accepted))
        await eventually(lambda: live.latest(T.state)["accepted"] == 59, within=5)
        published = [json.loads(p)["accepted"] for p in live.payloads(T.state)]
    assert len(published) < 10  # newest wins: no backlog of every intermediate state
    assert published[-1] == 59


async def test_commands_are_executed_and_answered(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker), lambda: state, control)
    async with running(telemetry), Watcher(broker.port, T.result) as live:
        await eventually(telemetry.connected.is_set)
        await live.publish(T.command("pause"), b'{"reason": "tariff", "request_id": "p1"}')
        await live.publish(
            T.command("set_frequency"), b'{"device":"ultra","mhz":490,"request_id":"f1"}'
        )
        await live.publish(T.command("switch_pool"), b'{"pool": "backup", "request_id": "s1"}')
        await live.publish(T.command("mining"), b'{"running": true, "request_id": "m1"}')
        await live.publish(T.command("set_frequency"), b'{"mhz": 900, "request_id": "f2"}')
        pause, tune, switch, resume, too_fast = [
            await live.result(T.result, rid) for rid in ("p1", "f1", "s1", "m1", "f2")
        ]
    assert pause == {"ok": True, "error": None, "request_id": "p1", "command": "pause",
                     "result": None}  # fmt: skip
    assert tune["ok"] is True
    assert tune["result"] == {"mhz": 487.5}
    assert (switch["ok"], resume["ok"]) == (True, True)
    assert too_fast["ok"] is False
    assert too_fast["error"] == "frequency: 900 MHz is above this chip's 800 MHz"
    assert control.calls == [
        ("pause", ("tariff",)),
        ("set_frequency", ("ultra", 490.0)),
        ("switch_pool", (1,)),
        ("resume", ()),
        ("set_frequency", ("ultra", 900.0)),
    ]


GARBAGE = [
    ("pause", b"\xff\xfe\x00binary"),
    ("pause", b"[1, 2, 3]"),
    ("pause", b'{"reason": 12}'),
    ("set_frequency", b'{"device": "nope", "mhz": 500}'),
    ("set_frequency", b'{"device": "ultra", "mhz": "fast"}'),
    ("switch_pool", b'{"pool": 99}'),
    ("reboot", b"{}"),
    ("pause", b'{"reason": "' + b"x" * 5000 + b'"}'),
    ("mining", b'{"running": "sometimes"}'),
    ("pause/extra/levels", b"{}"),
]


async def test_garbage_commands_get_error_results_and_nothing_happens(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker), lambda: state, control)
    async with running(telemetry), Watcher(broker.port, T.result) as live:
        await eventually(telemetry.connected.is_set)
        for name, payload in GARBAGE:
            await live.publish(T.command(name), payload)
        await eventually(lambda: len(live.payloads(T.result)) == len(GARBAGE))
        results = [json.loads(p) for p in live.payloads(T.result)]
        await live.publish(T.command("resume"), b'{"request_id": "after"}')
        after = await live.result(T.result, "after")
    assert all(result["ok"] is False and result["error"] for result in results)
    assert after["ok"] is True
    assert control.calls == [("resume", ())]


async def test_retained_commands_are_ignored(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    async with Watcher(broker.port, T.result) as live:
        await live.publish(T.command("pause"), b'{"request_id": "stale"}', retain=True)
        telemetry = fast(mqtt_config(broker), lambda: state, control)
        async with running(telemetry):
            await eventually(lambda: telemetry.rounds >= 2)
            await live.publish(T.command("resume"), b'{"request_id": "live"}')
            assert (await live.result(T.result, "live"))["ok"] is True
    assert control.calls == [("resume", ())]


async def test_too_many_pending_commands_are_refused_as_busy(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    release = asyncio.Event()

    async def slow_pause(reason: str) -> None:
        control.calls.append(("pause", (reason,)))
        await release.wait()

    control.pause = slow_pause  # type: ignore[method-assign]
    telemetry = fast(mqtt_config(broker), lambda: state, control)
    async with running(telemetry), Watcher(broker.port, T.result) as live:
        await eventually(telemetry.connected.is_set)
        for i in range(24):
            await live.publish(T.command("pause"), json.dumps({"request_id": f"c{i}"}).encode())
        await eventually(lambda: any(b"busy" in p for p in live.payloads(T.result)))
        release.set()
        await eventually(lambda: len(live.payloads(T.result)) == 24)
        results = [json.loads(p) for p in live.payloads(T.result)]
    busy = [r for r in results if r["error"] == "busy: too many pending commands"]
    assert busy
    assert all(r["ok"] for r in results if r not in busy)


async def test_home_assistant_restart_triggers_rediscovery(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker, interval=60.0), lambda: state, control)
    topic = f"homeassistant/sensor/{NODE}/power/config"
    async with running(telemetry), Watcher(broker.port, "homeassistant/#") as live:
        await eventually(lambda: live.has(topic))
        before = len(live.payloads(topic))
        await live.publish("homeassistant/status", b"online")
        await eventually(lambda: len(live.payloads(topic)) > before)


async def test_entities_that_go_away_are_deleted(
    broker: MosquittoBroker, make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    current = [make_state()]
    telemetry = fast(mqtt_config(broker), lambda: current[0], control)
    topic = f"homeassistant/sensor/{NODE}/ultra_temperature/config"
    async with running(telemetry), Watcher(broker.port, "homeassistant/#") as live:
        await eventually(lambda: live.has(topic))
        device = dataclasses.replace(current[0].devices[0], temperature_c=None)
        current[0] = make_state(devices=(device,))
        await eventually(lambda: live.payloads(topic)[-1] == b"")


async def test_clean_shutdown_says_offline(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(broker), lambda: state, control)
    async with running(telemetry):
        await eventually(lambda: telemetry.rounds >= 1)
    async with Watcher(broker.port, T.availability) as late:
        await eventually(lambda: late.has(T.availability))
        assert late.payloads(T.availability) == [b"offline"]


LAST_WILL_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from stratum_client.api.model import MinerState
    from stratum_client.config import MqttConfig
    from stratum_client.telemetry import MqttTelemetry

    class Idle:
        def __getattr__(self, name):
            raise RuntimeError(name)

    state = MinerState(version="0", hostname="child", when=0.0, elapsed=1.0)
    config = MqttConfig(enabled=True, port=int(sys.argv[1]), base_topic=sys.argv[2], interval=0.2)
    asyncio.run(MqttTelemetry(config, lambda: state, Idle(), keepalive=5).run())
    """
)


async def test_last_will_marks_a_killed_daemon_offline(broker: MosquittoBroker) -> None:
    base = "stratum-client/child"
    availability = Topics(base).availability
    async with Watcher(broker.port, availability) as live:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LAST_WILL_SCRIPT, str(broker.port), base,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await eventually(lambda: live.payloads(availability)[-1:] == [b"online"], within=20)
        finally:
            child.kill()  # no DISCONNECT: the broker must publish the will
            await child.wait()
        await eventually(lambda: live.payloads(availability)[-1:] == [b"offline"])


class MiningLoop:
    """Stands in for the mining loop: ticks every 10 ms and records how late it ran."""

    def __init__(self) -> None:
        self.ticks = 0
        self.worst_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.worst_lag = max(self.worst_lag, loop.time() - due)
            self.ticks += 1

    def __enter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


STALL_LIMIT = 0.1
"""Seconds. Typical worst lag is a few ms even with both cores of a 2-core box busy."""


async def test_broker_restart_mid_run_never_stalls_mining(
    broker: MosquittoBroker, make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    current = [make_state()]
    telemetry = fast(mqtt_config(broker, interval=0.1), lambda: current[0], control)
    with MiningLoop() as mining:
        async with running(telemetry):
            await eventually(lambda: telemetry.rounds >= 2)
            await broker.astop()
            await eventually(lambda: not telemetry.connected.is_set())
            for accepted in range(100, 140):  # the daemon keeps pushing during the outage
                current[0] = make_state(accepted=accepted)
                telemetry.push(current[0])
                await asyncio.sleep(0.02)
            ticks_during_outage = mining.ticks
            await broker.astart()
            await eventually(lambda: telemetry.connections >= 2)
            async with Watcher(broker.port, T.state, T.result) as live:
                await eventually(
                    lambda: live.has(T.state) and live.latest(T.state)["accepted"] == 139
                )
                await live.publish(T.command("resume"), b'{"request_id": "back"}')
                assert (await live.result(T.result, "back"))["ok"] is True
    assert ticks_during_outage > 50
    assert mining.worst_lag < STALL_LIMIT, f"event loop stalled for {mining.worst_lag:.3f} s"


async def test_broker_down_at_start_then_up(
    idle_broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    telemetry = fast(mqtt_config(idle_broker), lambda: state, control)
    with MiningLoop() as mining, capture_logs() as logs:
        async with running(telemetry):
            await asyncio.sleep(0.5)
            assert telemetry.connections == 0
            await idle_broker.astart()
            await eventually(telemetry.connected.is_set)
            await eventually(lambda: telemetry.rounds >= 1)
    warnings = [entry for entry in logs if entry["event"] == "MQTT broker unreachable"]
    assert len(warnings) == 1  # logged once, not once per retry
    assert mining.worst_lag < STALL_LIMIT


async def test_username_password_and_tls(
    idle_broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    idle_broker.require_password("miner", "broker-pass-123")
    idle_broker.require_tls()
    await idle_broker.astart()
    secure = mqtt_config(
        idle_broker, tls=True, ca_file=idle_broker.ca_file, username="miner",
        password=Secret("broker-pass-123"), client_id="rig1-telemetry",
    )  # fmt: skip
    wrong = dataclasses.replace(secure, password=Secret("not-the-password"), client_id="rig1-bad")
    with capture_logs() as logs:
        async with running(fast(wrong, lambda: state, control)) as rejected:
            await asyncio.sleep(1.0)
            assert rejected.connections == 0
        async with running(fast(secure, lambda: state, control)) as accepted:
            await eventually(lambda: accepted.rounds >= 1)
    assert "broker-pass-123" not in repr(logs)
    assert "not-the-password" not in repr(logs)
