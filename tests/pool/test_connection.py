"""The pool transport over real sockets: TCP and TLS, socket tuning, every way to fail."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from structlog.testing import capture_logs

from stratum_client.config import PoolConfig
from stratum_client.errors import StratumClientError
from stratum_client.pool.connection import (
    KEEPALIVE,
    PoolCertificateError,
    PoolConnection,
    PoolConnectionError,
    PoolConnectionLostError,
    PoolUnreachableError,
    open_pool_connection,
)
from stratum_client.secrets import Secret
from stratum_client.testing.pool import LocalPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def pool_config(
    port: int,
    *,
    host: str = "127.0.0.1",
    tls: bool = False,
    ca_file: Path | None = None,
    tls_verify: bool = True,
) -> PoolConfig:
    scheme = "stratum+ssl" if tls else "stratum+tcp"
    return PoolConfig(
        url=f"{scheme}://{host}:{port}",
        host=host,
        port=port,
        tls=tls,
        user="bc1qtest.rig1",
        password=Secret("s3cret-pass"),
        name=f"test-{port}",
        ca_file=ca_file,
        tls_verify=tls_verify,
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "pool-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(context)
    return context


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start a throwaway TCP server with a given handler; returns its port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def read_until_lost(conn: PoolConnection) -> None:
    while True:
        await conn.read()


async def subscribe_roundtrip(port: int, **kwargs: Any) -> dict[str, object]:
    conn = await open_pool_connection(pool_config(port, **kwargs), connect_timeout=5)
    try:
        conn.write(b'{"id":1,"method":"mining.subscribe","params":["t/1"]}\n')
        data = b""
        while not data.endswith(b"\n"):
            data += await conn.read()
        reply: dict[str, object] = json.loads(data.splitlines()[0])
        return reply
    finally:
        await conn.close()


async def test_plain_connection_reads_and_writes() -> None:
    async with LocalPool() as pool:
        reply = await subscribe_roundtrip(pool.port)
    assert reply["id"] == 1
    assert reply["error"] is None


async def test_socket_is_tuned_for_stratum() -> None:
    async with LocalPool() as pool:
        conn = await open_pool_connection(pool_config(pool.port), connect_timeout=5)
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
            count = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
            assert (idle, interval, count) == KEEPALIVE
        assert conn.peer == f"127.0.0.1:{pool.port}"
        assert not conn.tls
        await conn.close()


async def test_refused() -> None:
    port = free_port()
    with pytest.raises(PoolUnreachableError, match=rf"127\.0\.0\.1:{port}: connection refused"):
        await open_pool_connection(pool_config(port), connect_timeout=2)


async def test_name_that_does_not_resolve() -> None:
    config = pool_config(3333, host="no-such-pool.invalid")
    with pytest.raises(PoolUnreachableError, match=r"no-such-pool\.invalid:3333: cannot resolve"):
        await open_pool_connection(config, connect_timeout=2)


async def test_connect_deadline_covers_the_tls_handshake(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the ClientHello

    port = await serve(mute)
    with pytest.raises(PoolUnreachableError, match=r"no connection within 0\.3 s"):
        await open_pool_connection(pool_config(port, tls=True), connect_timeout=0.3)


async def test_eof_is_a_lost_connection(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"id":null,"method":"client.show_message","params":["bye"]}\n')
        await writer.drain()
        writer.close()

    port = await serve(hang_up)
    conn = await open_pool_connection(pool_config(port), connect_timeout=2)
    assert b"bye" in await conn.read()
    with pytest.raises(PoolConnectionLostError, match="connection closed by the pool"):
        await conn.read()
    await conn.close()
    with pytest.raises(PoolConnectionLostError, match="already closed"):
        conn.write(b"{}\n")


async def test_a_listener_hears_bytes_as_they_arrive_and_the_end_is_raised(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"first\n")
        await writer.drain()
        await reader.readline()  # until the client has stopped listening
        writer.write(b"left unread\n")
        await writer.drain()
        writer.close()

    port = await serve(talk)
    conn = await open_pool_connection(pool_config(port), connect_timeout=2)
    heard: list[bytes] = []

    def listener(data: bytes) -> None:
        heard.append(data)
        conn.listen(None)  # as the read loop does after a protocol error
        conn.write(b"done\n")

    conn.listen(listener)
    with pytest.raises(PoolConnectionLostError, match="connection closed by the pool"):
        await asyncio.wait_for(conn.until_closed(), 5)  # bytes buffered after it: no spin
    assert heard == [b"first\n"]
    await conn.close()


async def test_what_a_listener_raises_comes_out_of_until_closed(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"boom\n")
        await writer.drain()
        await reader.read()

    port = await serve(talk)
    conn = await open_pool_connection(pool_config(port), connect_timeout=2)

    def listener(data: bytes) -> None:
        raise RuntimeError(f"cannot handle {data!r}")

    conn.listen(listener)
    with pytest.raises(RuntimeError, match="cannot handle"):
        await asyncio.wait_for(conn.until_closed(), 5)
    await conn.close()


async def test_reset_mid_line_is_a_lost_connection(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"id":null,"method":"mining.no')  # half a line, then RST
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    port = await serve(reset)
    conn = await open_pool_connection(pool_config(port), connect_timeout=2)
    with pytest.raises(PoolConnectionLostError) as caught:
        await read_until_lost(conn)
    assert "reset" in str(caught.value) or "closed" in str(caught.value)
    await conn.close()


async def test_tls_with_a_private_ca(ca: trustme.CA, ca_file: Path) -> None:
    async with LocalPool(ssl_context=server_context(ca)) as pool:
        reply = await subscribe_roundtrip(pool.port, tls=True, ca_file=ca_file)
        assert reply["error"] is None
        conn = await open_pool_connection(
            pool_config(pool.port, host="localhost", tls=True, ca_file=ca_file), connect_timeout=5
        )
        assert conn.tls
        await conn.close()


async def test_tls_certificate_from_an_unknown_ca_is_refused(ca_file: Path) -> None:
    stranger = trustme.CA()
    async with LocalPool(ssl_context=server_context(stranger)) as pool:
        config = pool_config(pool.port, tls=True, ca_file=ca_file)
        with pytest.raises(PoolCertificateError) as caught:
            await open_pool_connection(config, connect_timeout=5)
    message = str(caught.value)
    assert "certificate" in message
    assert "127.0.0.1" in message
    assert "ca_file" in message


async def test_tls_certificate_for_another_host_is_refused(ca: trustme.CA, ca_file: Path) -> None:
    async with LocalPool(ssl_context=server_context(ca, "pool.example.org")) as pool:
        config = pool_config(pool.port, host="localhost", tls=True, ca_file=ca_file)
        with pytest.raises(PoolCertificateError, match="certificate of localhost"):
            await open_pool_connection(config, connect_timeout=5)


async def test_tls_is_verified_against_system_cas_by_default(ca: trustme.CA) -> None:
    async with LocalPool(ssl_context=server_context(ca)) as pool:
        with pytest.raises(PoolCertificateError):
            await open_pool_connection(pool_config(pool.port, tls=True), connect_timeout=5)


async def test_tls_verify_off_connects_anyway_and_warns() -> None:
    stranger = trustme.CA()
    async with LocalPool(ssl_context=server_context(stranger)) as pool:
        with capture_logs() as logs:
            reply = await subscribe_roundtrip(pool.port, tls=True, tls_verify=False)
    assert reply["error"] is None
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert any("verification is disabled" in e["event"] for e in warnings)


async def test_tls_to_a_plain_port_says_so(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"id":null,"method":"mining.notify","params":[]}\n')
        await writer.drain()
        await reader.read()

    port = await serve(plain)
    with pytest.raises(PoolUnreachableError, match="TLS handshake failed"):
        await open_pool_connection(pool_config(port, tls=True), connect_timeout=2)


def test_errors_belong_to_the_project_tree() -> None:
    error = PoolCertificateError("pool.example.org", 443, "bad")
    assert isinstance(error, PoolConnectionError)
    assert isinstance(error, StratumClientError)
    assert str(error) == "pool.example.org:443: bad"
    assert str(PoolUnreachableError("::1", 3333, "x")) == "[::1]:3333: x"
