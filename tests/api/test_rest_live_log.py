"""``/api/ws``: structlog events and share results reach websocket clients, redacted; a
client that falls behind is dropped, and publishing never waits for anyone."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import aiohttp
import pytest
import structlog

from stratum_client.api.model import MinerState
from stratum_client.api.rest_logs import LogHub
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress
from stratum_client.logsetup import configure_logging, reset_logging

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


@pytest.fixture
def daemon_logging() -> Iterator[None]:
    """Logging as the daemon configures it (JSON to a buffer instead of the journal)."""
    configure_logging("info", "json", {}, io.StringIO(), capture_stdlib=False)
    yield
    reset_logging()


@pytest.mark.usefixtures("daemon_logging")
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
        structlog.get_logger("stratum_client.pool").debug("below the level")
        configure_logging("info", "json", {}, io.StringIO(), capture_stdlib=False)  # SIGHUP
        structlog.get_logger("stratum_client.pool").info("after the reload")
        line = await next_line(socket, "stratum_client.pool")
        assert "after the reload" in line  # and the debug line never came
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
