"""A taken port is one clear error naming the address and the option to change."""

from __future__ import annotations

import socket

import pytest

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
