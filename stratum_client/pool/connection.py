"""One TCP or TLS connection to a pool, on an asyncio transport and protocol.

This is the only place that touches sockets for pools. It opens the connection with a
deadline, verifies TLS certificates unless told otherwise, tunes the socket (no Nagle
delay for submits; keepalive so a dead peer is noticed even when the pool is quiet),
and turns every way a connection can fail into a :class:`PoolConnectionError` whose
message says what happened and to which host, so logs and the API can show it as is.

It knows nothing about Stratum: bytes in, bytes out. The session and the manager decide
what the bytes mean and when a quiet connection is dead. Received bytes either wait for
:meth:`PoolConnection.read` or, with a listener set, are handed over from the transport's
read callback, so a ``mining.notify`` is parsed in the loop step that read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Final

import structlog

from stratum_client.config import PoolConfig
from stratum_client.errors import StratumClientError

__all__ = [
    "KEEPALIVE",
    "PoolCertificateError",
    "PoolConnection",
    "PoolConnectionError",
    "PoolConnectionLostError",
    "PoolUnreachableError",
    "open_pool_connection",
    "tls_context",
]

log = structlog.get_logger(__name__)

KEEPALIVE: Final = (60, 10, 3)
"""TCP keepalive idle, interval and count (s, s, probes): a vanished peer shows in ~90 s."""

_CHUNK = 64 * 1024
"""Buffered bytes (no listener) past which reading pauses until :meth:`read` drains them."""
_MAX_WRITE_BUFFER = 1024 * 1024
"""Bytes queued for a pool that is not reading; past this the connection is dead."""


class PoolConnectionError(StratumClientError):
    """The connection to a pool could not be opened or was lost; names host and port."""

    def __init__(self, host: str, port: int, problem: str) -> None:
        super().__init__(f"{_address(host, port)}: {problem}")
        self.host = host
        self.port = port
        self.problem = problem


class PoolUnreachableError(PoolConnectionError):
    """No connection: name resolution failed, refused, unreachable or timed out."""


class PoolCertificateError(PoolConnectionError):
    """The pool's TLS certificate failed verification (unknown CA, wrong host, expired)."""


class PoolConnectionLostError(PoolConnectionError):
    """An open connection ended: closed by the pool, reset, or a TLS error mid-stream."""


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tls_context(pool: PoolConfig) -> ssl.SSLContext:
    """A client context for ``pool``: system CAs (or ``ca_file``) and host name checks.

    ``tls_verify = false`` turns both off, which only protects against passive
    eavesdroppers; it is logged as a warning each time so it is never forgotten.
    """
    cafile = str(pool.ca_file) if pool.ca_file is not None else None
    context = ssl.create_default_context(cafile=cafile)
    if not pool.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "TLS certificate verification is disabled for this pool (tls_verify = false)",
            pool=pool.name,
        )
    return context


def _tune(sock: socket.socket | None) -> None:
    """TCP_NODELAY and keepalive, as far as the platform supports them."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    idle, interval, count = KEEPALIVE
    options = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    # Linux names the idle time TCP_KEEPIDLE, macOS TCP_KEEPALIVE
    idle_option = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for option, value in (
        (idle_option, idle),
        (getattr(socket, "TCP_KEEPINTVL", None), interval),
        (getattr(socket, "TCP_KEEPCNT", None), count),
    ):
        if option is not None:
            options.append((socket.IPPROTO_TCP, option, value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


def _connect_error(
    host: str, port: int, exc: BaseException, deadline: float
) -> PoolConnectionError:
    """Translate what opening a connection raised into a message a person can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        return PoolCertificateError(
            host,
            port,
            f"TLS certificate problem: the certificate of {host} could not be verified "
            f"({detail}); trust its CA with ca_file, or fix the pool host name",
        )
    return PoolUnreachableError(host, port, _unreachable(host, exc, deadline))


def _unreachable(host: str, exc: BaseException, deadline: float) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc}); is this a TLS port?"
    if isinstance(exc, TimeoutError):
        return f"no connection within {deadline:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host!r} ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = exc.strerror if isinstance(exc, OSError) else None
    return text or str(exc) or type(exc).__name__


async def open_pool_connection(
    pool: PoolConfig,
    *,
    connect_timeout: float,
    host: str | None = None,
    port: int | None = None,
) -> PoolConnection:
    """Connect to ``pool`` (or to ``host``/``port`` after a redirect) within
    ``connect_timeout`` s.

    The deadline covers name resolution, TCP and the TLS handshake. The TLS server name
    (SNI and the certificate check) is the host actually connected to.
    """
    target_host = host or pool.host
    target_port = port or pool.port
    context = tls_context(pool) if pool.tls else None
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(connect_timeout):
            transport, protocol = await loop.create_connection(
                _PoolProtocol,
                target_host,
                target_port,
                ssl=context,
                server_hostname=target_host if context is not None else None,
                ssl_handshake_timeout=connect_timeout if context is not None else None,
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise _connect_error(target_host, target_port, exc, connect_timeout) from exc
    _tune(transport.get_extra_info("socket"))
    return PoolConnection(target_host, target_port, transport, protocol)


class _PoolProtocol(asyncio.Protocol):
    """Received bytes and the end of the connection, for :class:`PoolConnection`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.listener: Callable[[bytes], None] | None = None
        self.listener_error: Exception | None = None
        self.ended = False
        self.cause: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        listener = self.listener
        if listener is not None:
            try:
                listener(data)
            except Exception as exc:  # the reading task re-raises it
                self.listener, self.listener_error = None, exc
                self._wake()
            return
        self.buffer += data
        if len(self.buffer) > _CHUNK and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost reports the end

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended, self.cause = True, exc
        self._wake()
        if not self._closed.done():
            self._closed.set_result(None)

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        if self.transport is not None and not self.ended:
            self.transport.resume_reading()
        return data

    async def wait(self, *, data: bool = True) -> None:
        """Until bytes are buffered (``data``), the listener failed or the connection ended."""
        if (data and self.buffer) or self.ended or self.listener_error is not None:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def closed(self) -> None:
        await asyncio.shield(self._closed)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class PoolConnection:
    """An open pool connection: :meth:`read` chunks or :meth:`listen`, :meth:`write`
    bytes, :meth:`close`."""

    def __init__(
        self, host: str, port: int, transport: asyncio.Transport, protocol: _PoolProtocol
    ) -> None:
        self.host = host
        self.port = port
        self._transport = transport
        self._protocol = protocol

    def __repr__(self) -> str:
        state = "closing" if self._transport.is_closing() else "open"
        return f"PoolConnection({_address(self.host, self.port)}, {state})"

    @property
    def tls(self) -> bool:
        return self._transport.get_extra_info("sslcontext") is not None

    @property
    def peer(self) -> str:
        """The address actually connected to (after name resolution)."""
        peer = self._transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    async def read(self) -> bytes:
        """The next chunk (never empty); raises :class:`PoolConnectionLostError` at the end."""
        protocol = self._protocol
        await protocol.wait()
        if protocol.buffer:
            return protocol.take()
        raise self._ended()

    def listen(self, listener: Callable[[bytes], None] | None) -> None:
        """Hand received bytes straight to ``listener`` (None: buffer them for :meth:`read`).

        Bytes buffered before are handed over first. What ``listener`` raises detaches it
        and is raised by :meth:`until_closed`.
        """
        protocol = self._protocol
        protocol.listener = None
        if listener is not None and protocol.buffer:
            listener(protocol.take())
        protocol.listener = listener

    async def until_closed(self) -> None:
        """Wait while a listener takes the bytes; raises why the connection ended
        (:class:`PoolConnectionLostError`), or what the listener raised."""
        protocol = self._protocol
        while not protocol.ended and protocol.listener_error is None:
            await protocol.wait(data=False)  # bytes buffered without a listener wait here
        if (error := protocol.listener_error) is not None:
            protocol.listener_error = None
            raise error
        raise self._ended()

    def write(self, data: bytes) -> None:
        """Queue ``data``; never blocks. A pool that stops reading is treated as gone."""
        transport = self._transport
        if transport.is_closing():
            raise self._lost("connection already closed")
        try:
            transport.write(data)
        except (OSError, RuntimeError) as exc:
            raise self._lost(f"write failed ({exc})") from exc
        if transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            raise self._lost("the pool stopped reading (write buffer full)")

    async def close(self, grace: float = 2.0) -> None:
        """Close politely (TLS close_notify) for up to ``grace`` s, then abort."""
        self._transport.close()
        try:
            async with asyncio.timeout(grace):
                await self._protocol.closed()
        except TimeoutError:
            self._transport.abort()

    def abort(self) -> None:
        """Drop the connection at once, discarding anything unsent."""
        self._transport.abort()

    def _ended(self) -> PoolConnectionLostError:
        cause = self._protocol.cause
        if cause is None:
            return self._lost("connection closed by the pool")
        if isinstance(cause, ConnectionResetError):
            return self._lost("connection reset by the pool")
        if isinstance(cause, ssl.SSLError):
            return self._lost(f"TLS error ({cause.reason or cause})")
        if isinstance(cause, OSError):
            return self._lost(cause.strerror or str(cause) or type(cause).__name__)
        return self._lost(str(cause) or type(cause).__name__)

    def _lost(self, problem: str) -> PoolConnectionLostError:
        return PoolConnectionLostError(self.host, self.port, problem)
