"""The MQTT signal shell against a real mosquitto: delivery, garbage, outages, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import aiomqtt
import pytest
from structlog.testing import capture_logs

from stratum_client import mqtt_session
from stratum_client.config import MqttConfig
from stratum_client.energy.governor import Governor, Policy, ThresholdPolicy
from stratum_client.energy.mqtt_signals import SignalSubscriber
from stratum_client.energy.power import CHIP_POWER, DevicePower
from stratum_client.energy.signals import SignalBoard, SignalSpec
from stratum_client.logsetup import reset_logging
from stratum_client.secrets import Secret

if TYPE_CHECKING:
    from tests.conftest import Broker

SPECS = [
    SignalSpec("surplus", "home/meter", ("grid", "power"), scale=1000.0, invert=True, max_age=0.8),
    SignalSpec("carbon_intensity", "home/carbon", max_age=0.8),
]
GAMMA = DevicePower("gamma", CHIP_POWER["BM1370"], 1, 262.5, 525.0)


def governor() -> Governor:
    policy = Policy(modes=("surplus", "carbon"), min_dwell=0.0, carbon=ThresholdPolicy(300.0))
    return Governor(policy, [GAMMA])


@contextlib.asynccontextmanager
async def subscribed(board: SignalBoard, port: int) -> AsyncIterator[SignalSubscriber]:
    subscriber = SignalSubscriber(
        board, mqtt_session.Broker(port=port), backoff_initial=0.05, backoff_max=0.2
    )
    task = asyncio.create_task(subscriber.run(), name="energy-signals")
    try:
        yield subscriber
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(port: int, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1)


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def feed_until(
    port: int, topic: str, payload: bytes, check: Callable[[], bool], within: float = 5.0
) -> None:
    """Publish repeatedly until the board shows it (the subscription may still be settling)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: {payload!r} never arrived")
        await publish(port, topic, payload)
        await asyncio.sleep(0.05)


async def test_signals_arrive_and_steer_the_governor(mosquitto_broker: Broker) -> None:
    board = SignalBoard(SPECS)
    port = mosquitto_broker.port
    async with subscribed(board, port) as subscriber:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        assert board.link_problem is None
        await feed_until(
            port,
            "home/meter",
            b'{"grid": {"power": -0.04}}',
            lambda: board.value("surplus", time.monotonic()) is not None,
        )
        await feed_until(
            port,
            "home/carbon",
            b"120",
            lambda: board.value("carbon_intensity", time.monotonic()) == 120.0,
        )
        assert board.value("surplus", time.monotonic()) == pytest.approx(40.0)
        decision = governor().step(time.monotonic(), board)
        assert decision.per_device["gamma"].run
        assert not decision.fail_safe_engaged


async def test_garbage_over_mqtt_engages_the_fail_safe(mosquitto_broker: Broker) -> None:
    board = SignalBoard(SPECS)
    port = mosquitto_broker.port
    async with subscribed(board, port) as subscriber:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        await feed_until(
            port,
            "home/carbon",
            b"unknown",
            lambda: board.status(time.monotonic())["carbon_intensity"].state == "error",
        )
        decision = governor().step(time.monotonic(), board)
    assert decision.fail_safe_engaged
    assert not decision.per_device["gamma"].run
    assert decision.fail_safe_reason is not None
    assert "signal carbon_intensity (topic 'home/carbon'): sensor state is 'unknown'" in (
        decision.fail_safe_reason
    )


async def test_broker_outage_fails_safe_and_recovers(mosquitto_broker: Broker) -> None:
    board = SignalBoard(SPECS)
    port = mosquitto_broker.port
    gov = governor()
    async with subscribed(board, port) as subscriber:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        await feed_until(
            port,
            "home/carbon",
            b"100",
            lambda: board.value("carbon_intensity", time.monotonic()) is not None,
        )
        await feed_until(
            port,
            "home/meter",
            b'{"grid": {"power": -0.05}}',
            lambda: board.value("surplus", time.monotonic()) is not None,
        )
        assert gov.step(time.monotonic(), board).per_device["gamma"].run

        mosquitto_broker.stop()
        await eventually(lambda: board.link_problem is not None)
        await asyncio.sleep(0.9)
        down = gov.step(time.monotonic(), board)
        assert down.fail_safe_engaged
        assert not down.per_device["gamma"].run
        assert "broker:" in (down.fail_safe_reason or "")
        assert "stale" in (down.fail_safe_reason or "")

        mosquitto_broker.start()
        await eventually(lambda: subscriber.connections >= 2, within=10)
        assert board.link_problem is None
        await feed_until(
            port,
            "home/carbon",
            b"110",
            lambda: board.value("carbon_intensity", time.monotonic()) == 110.0,
        )
        await feed_until(
            port,
            "home/meter",
            b'{"grid": {"power": -0.05}}',
            lambda: board.value("surplus", time.monotonic()) is not None,
        )
        back = gov.step(time.monotonic(), board)
        assert back.per_device["gamma"].run
        assert not back.fail_safe_engaged


async def test_broker_absent_at_start_never_blocks_the_loop(mosquitto_broker: Broker) -> None:
    mosquitto_broker.stop()
    board = SignalBoard(SPECS)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        async with subscribed(board, mosquitto_broker.port) as subscriber:
            await asyncio.sleep(0.6)
            assert subscriber.connections == 0
            assert board.link_problem
            decision = governor().step(time.monotonic(), board)
            assert decision.fail_safe_engaged
            assert "broker:" in (decision.fail_safe_reason or "")
            mosquitto_broker.start()
            await asyncio.wait_for(subscriber.connected.wait(), 10)
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
    assert max(gaps) < 0.5, "reconnecting must never stall the event loop"


async def test_backoff_doubles_with_jitter_and_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 6:
            raise asyncio.CancelledError

    class Refused:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def __aenter__(self) -> None:
            raise aiomqtt.MqttError("[Errno 111] Connection refused")

        async def __aexit__(self, *exc: object) -> None:
            return None

    # the modules the subscriber's session loop reaches them through
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    monkeypatch.setattr(aiomqtt, "Client", Refused)
    board = SignalBoard(SPECS)
    jitter = iter([0.0, 1.0, 0.5, 0.0, 1.0, 1.0])
    broker = mqtt_session.Broker()
    subscriber = SignalSubscriber(
        board, broker, backoff_initial=1.0, backoff_max=4.0, jitter=lambda: next(jitter)
    )
    with pytest.raises(asyncio.CancelledError):
        await subscriber.run()
    assert waits == [0.5, 2.0, 3.0, 4.0 * 0.5, 4.0, 4.0]
    assert board.link_problem == "[Errno 111] Connection refused"


def test_broker_settings_from_the_telemetry_config() -> None:
    mqtt = MqttConfig(
        host="ha.local",
        port=8883,
        tls=True,
        username="miner",
        password=Secret("hunter22"),
        client_id="rig1",
    )
    settings = mqtt.broker(client_suffix="-energy")
    assert (settings.host, settings.port, settings.tls) == ("ha.local", 8883, True)
    assert settings.password == Secret("hunter22")
    assert settings.client_id == "rig1-energy"
    assert "hunter22" not in repr(settings)


def test_a_stuck_sensor_is_logged_once_and_its_recovery_once() -> None:
    reset_logging()
    board = SignalBoard(SPECS)
    subscriber = SignalSubscriber(board, mqtt_session.Broker(), clock=lambda: 1.0)
    with capture_logs() as logs:
        for _ in range(5):
            subscriber._deliver("home/carbon", b"unavailable")
        subscriber._deliver("home/carbon", b"100")
        subscriber._deliver("home/carbon", b"101")
    assert [entry["event"] for entry in logs] == [
        "energy signal rejected",
        "energy signal usable again",
    ]
    assert "sensor state is 'unavailable'" in logs[0]["problem"]
    assert board.value("carbon_intensity", 1.0) == 101.0


async def _retained(port: int, topic: str) -> bytes:
    """What a client subscribing now receives on ``topic`` (the retained message)."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError(f"nothing retained on {topic}")


async def test_published_state_is_newest_only_retained_and_survives_an_outage(
    mosquitto_broker: Broker,
) -> None:
    board = SignalBoard(SPECS)
    port = mosquitto_broker.port
    async with subscribed(board, port) as subscriber:
        subscriber.publish("sc/energy/state", b"first")
        subscriber.publish("sc/energy/state", b"second")  # replaces the unsent one
        await eventually(lambda: subscriber.published >= 1)
        assert await _retained(port, "sc/energy/state") == b"second"
        assert subscriber.published == 1

        mosquitto_broker.stop()
        await eventually(lambda: not subscriber.connected.is_set())
        subscriber.publish("sc/energy/state", b"during the outage")
        mosquitto_broker.start()  # persistence is off: only a re-send can bring it back
        await eventually(lambda: subscriber.published >= 2, within=10.0)
        assert await _retained(port, "sc/energy/state") == b"during the outage"
