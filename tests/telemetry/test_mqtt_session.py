"""Bounded, cancellable MQTT calls against a real mosquitto (and a broker that never answers).

The truth checked: a task publishing with QoS 1 stops when cancelled, whatever instant
the cancellation lands at (the client's own ``wait_for`` on Python 3.11 could swallow
it and leave the task publishing forever), and a broker that accepts TCP but never
answers makes connect fail with a clear error within the bound, not hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from stratum_client import mqtt_session

if TYPE_CHECKING:
    from tests.conftest import MosquittoBroker

CANCELS = 300


async def test_a_cancelled_publisher_always_stops(mosquitto_broker: MosquittoBroker) -> None:
    rng = random.Random(20261123)
    published = mid_publish = 0
    publishing = False

    async def publish_forever(client: aiomqtt.Client) -> None:
        nonlocal published, publishing
        while True:
            publishing = True
            try:
                await mqtt_session.publish(client, "sct-test/cancel", b"x", qos=1, within=5.0)
            finally:
                publishing = False
            published += 1

    client = mqtt_session.make_client(mqtt_session.Broker("127.0.0.1", mosquitto_broker.port))
    async with mqtt_session.session(client):
        for attempt in range(CANCELS):
            task = asyncio.create_task(publish_forever(client))
            await asyncio.sleep(rng.uniform(0.0, 0.004))
            mid_publish += publishing
            task.cancel()
            try:
                async with asyncio.timeout(5.0):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            except TimeoutError:
                pytest.fail(f"cancel {attempt}: the publisher swallowed its cancellation")
    # The cancellations did land mid-publish, many times, and publishes did complete.
    assert mid_publish >= CANCELS // 2, mid_publish
    assert published > 0


@contextlib.asynccontextmanager
async def mute_broker() -> AsyncIterator[int]:
    """A TCP listener that accepts and then never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_connect_to_a_mute_broker_fails_within_the_bound() -> None:
    async with mute_broker() as port:
        client = mqtt_session.make_client(mqtt_session.Broker("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(aiomqtt.MqttError, match="connect: no answer from the broker"):
            async with mqtt_session.session(client, within=0.5):
                pass
        assert loop.time() - started < 5.0  # bounded, not hung
