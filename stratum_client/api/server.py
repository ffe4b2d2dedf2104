"""What every API listener shares: binding (with one clear error for a busy port), the
connection cap, the per-client rate limit, and a shutdown that also ends open connections.

The cgminer API (:mod:`.cgminer_server`) and the HTTP API (:mod:`.rest_server`) are
subclasses: each supplies a protocol factory, this base binds it and keeps the books.
On Python 3.11 ``Server.close()`` leaves accepted connections running, so a client holding
one open would keep the daemon's shutdown waiting; :meth:`ApiServer.stop` closes them.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import structlog

from stratum_client.api.ratelimit import RateLimiter
from stratum_client.config import ListenAddress
from stratum_client.errors import StratumClientError

__all__ = ["Admission", "ApiServer", "ListenError", "peer_host"]

log = structlog.get_logger(__name__)

LISTEN_RETRY = 5.0
"""Seconds between attempts to bind a taken port."""

_WHY = {
    errno.EADDRINUSE: "the port is already in use (another program, or a second daemon)",
    errno.EACCES: "binding it needs privileges (ports below 1024)",
    errno.EADDRNOTAVAIL: "that address is not one of this host's",
}


class ListenError(StratumClientError):
    """An API could not bind its address; the message names the address and the option."""

    def __init__(self, what: str, listen: ListenAddress, option: str, exc: OSError) -> None:
        why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
        super().__init__(
            f"{what} cannot listen on {listen}: {why}; free the port or change {option}"
        )
        self.listen = listen
        self.option = option
        self.errno = exc.errno


class Admission(enum.Enum):
    """Whether a new connection is served."""

    SERVE = "serve"
    BUSY = "busy"
    """Over the connection cap."""
    LIMITED = "limited"
    """The client's rate limit is used up."""


def peer_host(transport: asyncio.BaseTransport) -> str:
    """The client's IP address as text ("unknown" for a non-IP transport)."""
    info = transport.get_extra_info("peername")
    return str(info[0]) if isinstance(info, tuple) and info else "unknown"


class ApiServer:
    """Binds ``listen`` on start, counts connections, and closes everything on stop.

    Subclasses implement :meth:`_protocol_factory` and may extend :meth:`_started` and
    :meth:`_stopping`; a connection handler calls :meth:`admit` once and
    :meth:`release` when it ends, and registers its task with :meth:`track`.
    """

    what = "API"
    """How errors and logs name this server (e.g. "cgminer API")."""

    def __init__(
        self,
        listen: ListenAddress,
        *,
        option: str,
        limiter: RateLimiter | None = None,
        max_connections: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listen = listen
        self.option = option
        self.limiter = limiter or RateLimiter()
        self.max_connections = max_connections
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._active = 0
        self._tasks: set[asyncio.Task[object]] = set()
        self._closers: set[Callable[[], None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"the {self.what} server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active(self) -> int:
        """Connections being served now."""
        return self._active

    def _protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        raise NotImplementedError

    async def _started(self) -> None:
        """Called once the socket is bound."""

    async def _stopping(self) -> None:
        """Called before the listener closes."""

    async def start(self) -> None:
        """Bind and serve; a bind failure is a :class:`ListenError` naming the option."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._protocol_factory(), self.listen.host, self.listen.port
            )
        except OSError as exc:
            raise ListenError(self.what, self.listen, self.option, exc) from None
        await self._started()
        log.info(f"{self.what} listening", listen=f"{self.listen.host}:{self.port}")

    async def serve(self, ready: asyncio.Event, retry: float = LISTEN_RETRY) -> None:
        """Listen until cancelled, ``ready`` set while listening.

        A bind failure (a taken port) is logged once as an error that names the option
        to change, then retried every ``retry`` seconds at debug level: no traceback
        every few seconds, and the API comes up by itself once the port is free.
        """
        told = False
        while True:
            try:
                await self.start()
                break
            except ListenError as exc:
                (log.debug if told else log.error)(f"{self.what} not listening", error=str(exc))
                told = True
                await asyncio.sleep(retry)
        try:
            ready.set()
            await asyncio.Event().wait()
        finally:
            ready.clear()
            await self.stop()

    async def stop(self) -> None:
        if self._server is None:
            return
        await self._stopping()
        server, self._server = self._server, None
        server.close()
        for close in list(self._closers):
            close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- bookkeeping for connection handlers ---------------------------------------------

    def admit(self, peer: str) -> Admission:
        """Count one new connection from ``peer``; each connection costs one token."""
        if self._active >= self.max_connections:
            return Admission.BUSY
        self._active += 1
        if not self.limiter.allow(peer, self._clock()):
            return Admission.LIMITED
        return Admission.SERVE

    def release(self, admission: Admission) -> None:
        """The connection ``admit`` answered for has ended."""
        if admission is not Admission.BUSY:
            self._active -= 1

    def track(self, task: asyncio.Task[object]) -> None:
        """Cancel ``task`` on stop (a connection handler or a reply-first action)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_stop(self, close: Callable[[], None]) -> Callable[[], None]:
        """Call ``close`` on stop (a transport to drop); returns the unregister function."""
        self._closers.add(close)
        return lambda: self._closers.discard(close)
