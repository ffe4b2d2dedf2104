"""A taken port is one clear error naming the address and the option to change."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
import structlog

from stratum_client.api.cgminer_server import CgminerServer
from stratum_client.api.model import MinerState
from stratum_client.api.rest_server import RestServer
from stratum_client.api.server import ListenError
from stratum_client.config import ListenAddress
from stratum_client.errors import StratumClientError


def _state() -> MinerState:
    raise AssertionError("never asked: the server does not start")


async def test_busy_port_names_port_and_option() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        listen = ListenAddress("127.0.0.1", port)
        servers = [
            (RestServer(listen, _state, None), "[api] rest_listen"),  # type: ignore[arg-type]
            (CgminerServer(listen, (), _state, None), "[api] cgminer_listen"),  # type: ignore[arg-type]
        ]
        for server, option in servers:
            with pytest.raises(ListenError) as caught:
                await server.start()
            assert isinstance(caught.value, StratumClientError)
            message = str(caught.value)
            assert str(port) in message
            assert option in message
            assert "already in use" in message
            await server.stop()  # never started: a no-op


async def test_busy_port_is_one_error_then_quiet_retries_until_free() -> None:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    server = CgminerServer(ListenAddress("127.0.0.1", port), (), _state, None)  # type: ignore[arg-type]
    ready = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(server.serve(ready, retry=0.02))
        for _ in range(1000):  # five refusals: one error, then quiet retries
            if sum(1 for e in logs if "not listening" in e["event"]) >= 5:
                break
            await asyncio.sleep(0.01)
        holder.close()
        async with asyncio.timeout(10):
            await ready.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    refused = [e for e in logs if "not listening" in e["event"]]
    assert [e["log_level"] for e in refused[:2]] == ["error", "debug"]
    assert sum(1 for e in refused if e["log_level"] == "error") == 1
    assert "[api] cgminer_listen" in refused[0]["error"]
    assert all("exc_info" not in e for e in refused)
    assert not ready.is_set()  # cleared when the task ended
