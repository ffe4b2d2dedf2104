"""The REST API's HTTP shell: a deliberately tiny HTTP/1.1 server on asyncio streams.

Why not aiohttp: the API is eight fixed routes returning small JSON documents, one
request per connection, no streaming, no TLS (put a reverse proxy in front for that).
A framework would add a large dependency tree to a daemon meant for small boards, and
most of its surface would be unused. What a hostile client can cost stays bounded here:
the head is read with an 8 KiB limit and the body with 4 KiB (see
:mod:`stratum_client.api.rest`), both under a deadline (slow-loris), connections are
capped, each client address is rate-limited, and every response closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from stratum_client.api import rest
from stratum_client.api.model import ControlOutcome, MinerControl, StateProvider, call_control
from stratum_client.api.ratelimit import RateLimiter
from stratum_client.api.rest import HttpRequest, HttpResponse, RestAction, RestActionKind
from stratum_client.api.server import Admission, ApiServer, peer_host
from stratum_client.config import ListenAddress
from stratum_client.secrets import Secret

__all__ = ["RestServer"]

log = structlog.get_logger(__name__)

ControlCall = Callable[[], Awaitable[float | int | None]]


class RestServer(ApiServer):
    """Serves the AxeOS-compatible API on ``listen`` until :meth:`stop`."""

    what = "REST API"

    def __init__(
        self,
        listen: ListenAddress,
        state_provider: StateProvider,
        control: MinerControl,
        *,
        token: Secret | None = None,
        stats_interval: float = 30.0,
        limiter: RateLimiter | None = None,
        read_timeout: float = 5.0,
        control_timeout: float = 60.0,
        max_connections: int = 32,
        clock: Callable[[], float] = time.monotonic,
        option: str = "[api] rest_listen",
    ) -> None:
        super().__init__(
            listen, option=option, limiter=limiter, max_connections=max_connections, clock=clock
        )
        self.state_provider = state_provider
        self.control = control
        self.token = token
        self.stats_interval = stats_interval
        self.read_timeout = read_timeout
        self.control_timeout = control_timeout
        self.history = rest.StatisticsHistory()
        self._sampler: asyncio.Task[None] | None = None

    def _protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.BaseProtocol:
            reader = asyncio.StreamReader(limit=rest.MAX_HEAD, loop=loop)
            return asyncio.StreamReaderProtocol(reader, self._serve, loop=loop)

        return factory

    async def _started(self) -> None:
        self._sampler = asyncio.create_task(self._sample(), name="rest-statistics")
        writes = "enabled (token)" if self.token else "disabled (read-only)"
        log.info("REST API writes", writes=writes)

    async def _stopping(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    async def _sample(self) -> None:
        """Feed the statistics ring; a failing provider must not end the sampling."""
        while True:
            try:
                self.history.record(self.state_provider())
            except Exception:
                log.exception("REST statistics sample failed")
            await asyncio.sleep(self.stats_interval)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.track(handler)
        peer = peer_host(writer.transport)
        admission = self.admit(peer)
        try:
            if admission is Admission.BUSY:
                await self._send(writer, rest.error(503, "too many connections"), head_only=False)
                return
            await self._exchange(reader, writer, peer, admission)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("REST client went away", client=peer, error=type(exc).__name__)
        except Exception:  # one bad exchange must never take the listener down
            log.exception("REST request failed", client=peer)
        finally:
            self.release(admission)
            await _close(writer)

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        admission: Admission,
    ) -> None:
        request = await self._read(reader)  # even when refusing: unread bytes would reset
        if admission is Admission.LIMITED:
            await self._send(writer, rest.error(429, "rate limit exceeded"), head_only=False)
            return
        if isinstance(request, HttpResponse):
            await self._send(writer, request, head_only=False)
            return
        try:
            response = await self._respond(request, peer)
        except Exception:  # e.g. the state provider broke: answer, and keep serving
            log.exception("REST request failed", client=peer, path=request.path[:64])
            response = rest.error(500, "internal error")
        log.debug("REST request", client=peer, method=request.method, status=response.status)
        await self._send(writer, response, head_only=request.method == "HEAD")

    async def _read(self, reader: asyncio.StreamReader) -> HttpRequest | HttpResponse:
        """The head, then exactly ``Content-Length`` body bytes, all within the deadline."""
        try:
            async with asyncio.timeout(self.read_timeout):
                parsed = rest.parse_head(await reader.readuntil(b"\r\n\r\n"))
                if isinstance(parsed, HttpRequest) and parsed.content_length:
                    body = await reader.readexactly(parsed.content_length)
                    parsed = rest.with_body(parsed, body)
        except TimeoutError:
            return rest.error(408, "request not received in time")
        except (asyncio.LimitOverrunError, ValueError):
            return rest.error(431, "request head too large")
        return parsed

    async def _respond(self, request: HttpRequest, peer: str) -> HttpResponse:
        outcome = rest.dispatch(
            request, self.state_provider(), token=self.token, history=self.history
        )
        if not isinstance(outcome, RestAction):
            return outcome
        log.info("REST write", command=outcome.kind.value, client=peer)
        if outcome.replies_first:
            self.track(asyncio.create_task(self._run(outcome), name=f"rest-{outcome.kind.value}"))
            return rest.action_response(outcome, [ControlOutcome(True)])
        results = await self._run(outcome)
        return rest.action_response(outcome, results)

    async def _run(self, action: RestAction) -> list[ControlOutcome]:
        what = action.kind.value
        within = self.control_timeout
        call: ControlCall
        match action.kind:
            case RestActionKind.SET_FREQUENCY:
                return [
                    await call_control(
                        _set_frequency(self.control, name, action.mhz), within=within, what=what
                    )
                    for name in action.devices
                ]
            case RestActionKind.PAUSE:
                call = _pause(self.control)
            case RestActionKind.RESUME:
                call = self.control.resume
            case RestActionKind.RESTART:
                await asyncio.sleep(0.05)  # let the response reach the client first
                call = self.control.restart
        return [await call_control(call, within=within, what=what)]

    async def _send(
        self, writer: asyncio.StreamWriter, response: HttpResponse, *, head_only: bool
    ) -> None:
        writer.write(response.encode(head_only=head_only))
        async with asyncio.timeout(self.read_timeout):
            await writer.drain()


def _set_frequency(control: MinerControl, device: str, mhz: float) -> ControlCall:
    async def call() -> float:
        return await control.set_frequency(device, mhz)

    return call


def _pause(control: MinerControl) -> ControlCall:
    async def call() -> None:
        await control.pause("REST API")

    return call


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
