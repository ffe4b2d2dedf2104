"""The local pool's transport: a listener, one :class:`Miner` per connection, JSON lines.

It moves lines and nothing else: every request is recorded in :attr:`LineServer.requests`
and handed to ``_dispatch``, which the pool implements. Two test hooks live here because
they are about the wire: :attr:`LineServer.silent` (read everything, answer nothing) and
:meth:`LineServer.hold_submits` (read submits but hold their replies back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any, Self

import structlog

from stratum_client.testing.judge import Miner

__all__ = ["LineServer"]

log = structlog.get_logger("stratum_client.testing.pool")

_MAX_LINE = 16 * 1024


class LineServer:
    """Listens on ``host:port`` (port 0 picks a free one) and serves Stratum lines."""

    def __init__(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None, difficulty: float
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.difficulty = difficulty
        """The difficulty a new connection starts at."""
        self.requests: list[dict[str, Any]] = []
        self.silent = False
        self.connections = 0
        self._submits_open = asyncio.Event()
        self._submits_open.set()
        self._held = 0
        self._clients: set[Miner] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen (again, after :meth:`stop`, on the same port)."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context, limit=_MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and drop every connection."""
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.writer.close()
        self._clients.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        scheme = "stratum+ssl" if self.ssl_context else "stratum+tcp"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def hold_submits(self) -> None:
        """Read submits but answer none (nor anything after them on that connection)
        until :meth:`release_submits`: shares stay in flight for as long as a test needs."""
        self._submits_open.clear()

    def release_submits(self) -> None:
        """Answer the held submits, in order, and every later one at once."""
        self._submits_open.set()

    @property
    def held_submits(self) -> int:
        """Submits read and waiting for :meth:`release_submits`."""
        return self._held

    async def _drain_all(self) -> None:
        for client in list(self._clients):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Miner(writer=writer, difficulty=self.difficulty)
        client.previous_difficulty = self.difficulty
        self._clients.add(client)
        self.connections += 1
        try:
            while line := await reader.readline():
                await self._handle_line(client, line)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()

    async def _handle_line(self, client: Miner, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            log.warning("local pool: malformed line", line=line[:80])
            return
        if not isinstance(request, dict):
            return
        self.requests.append(request)
        if self.silent:
            return
        if request.get("method") == "mining.submit" and not self._submits_open.is_set():
            self._held += 1
            try:
                await self._submits_open.wait()
            finally:
                self._held -= 1
        self._dispatch(client, request)
        with contextlib.suppress(ConnectionError):
            await client.writer.drain()

    def _dispatch(self, client: Miner, request: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- wire ----------------------------------------------------------------------

    def _reply(self, client: Miner, rid: Any, result: Any, error: Any) -> None:
        self._write(client, {"id": rid, "result": result, "error": error})

    def _notify(self, client: Miner, method: str, params: list[Any]) -> None:
        self._write(client, {"id": None, "method": method, "params": params})

    def _write(self, client: Miner, message: dict[str, Any]) -> None:
        if client.writer.is_closing():
            return
        client.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
