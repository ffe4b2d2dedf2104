"""``/api/ws``: structlog events and share results reach websocket clients, redacted; a
client that falls behind is dropped, and publishing never waits for anyone."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
import structlog

from stratum_client.api.model import MinerState
from stratum_client.api.rest_logs import LogHub
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress

if TYPE_CHECKING:
    from conftest import RecordingControl


async def subscribed(server: RestServer) -> None:
    async with asyncio.timeout(10):
        for _ in range(1000):
            if server.logs.clients:
                return
            await asyncio.sleep(0.01)


async def next_line(socket: aiohttp.ClientWebSocketResponse, containing: str) -> str:
    async with asyncio.timeout(10):
        while True:
            message = await socket.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            if containing in message.data:
                return str(message.data)


async def test_log_events_and_share_lines_reach_the_socket(
    make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    current = [make_state()]
    server = RestServer(ListenAddress("127.0.0.1", 0), lambda: current[0], control)
    async with (
        server,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{server.port}/api/ws") as socket,
    ):
        await subscribed(server)
        structlog.get_logger("stratum_client.pool").warning(
            "pool said hello", pool=0, password="hunter22"
        )
        line = await next_line(socket, "pool said hello")
        assert "warning" in line
        assert "pool=0" in line
        assert "hunter22" not in line
        current[0] = dataclasses.replace(current[0], accepted=current[0].accepted + 3)
        shares = await next_line(socket, "share accepted")
        assert "count=3" in shares


def test_a_full_queue_drops_the_client_without_waiting() -> None:
    async def run() -> None:
        hub = LogHub()
        hub.attach()
        try:
            slow = hub.subscribe(size=2)
            quick = hub.subscribe(size=100)
            for n in range(5):
                hub.publish(f"line {n}")  # returns at once, never awaits
            assert slow.dropped.is_set()
            assert slow.queue.qsize() == 2
            assert quick.queue.qsize() == 5
            assert not quick.dropped.is_set()
        finally:
            hub.detach()

    asyncio.run(run())


async def test_a_client_that_falls_behind_is_disconnected(
    state: MinerState, control: RecordingControl
) -> None:
    server = RestServer(ListenAddress("127.0.0.1", 0), lambda: state, control)
    async with (
        server,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{server.port}/api/ws") as socket,
    ):
        await subscribed(server)
        for n in range(1000):  # in one go: the sender task cannot keep up
            server.logs.publish(f"burst {n}")
        async with asyncio.timeout(10):
            while (await socket.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert socket.closed
    assert not server.logs.clients
