"""The HTTP shell on aiohttp: the AxeOS REST API, ``/api/ws``, ``/metrics`` and the dashboard.

aiohttp parses HTTP (its parser is fuzzed and maintained; ours is gone). This module
only adds what a miner on a LAN needs on top: a connection cap and a per-client rate
limit (decided when the connection opens, answered once its request arrives), a
deadline for the request head and body (slow senders get 408 and are closed), a 4 KiB
body limit, one request per connection, and writes that still need the token. Routes and
fields live in the sans-IO core (:mod:`.rest`); the pages in :mod:`.rest_pages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from stratum_client.api import rest
from stratum_client.api.model import ControlOutcome, MinerControl, StateProvider, call_control
from stratum_client.api.ratelimit import RateLimiter
from stratum_client.api.rest import HttpRequest, HttpResponse, RestAction, RestActionKind
from stratum_client.api.rest_logs import LogHub
from stratum_client.api.rest_pages import Pages
from stratum_client.api.server import Admission, ApiServer, peer_host
from stratum_client.config import ListenAddress
from stratum_client.history import DEFAULT_NAME as HISTORY_NAME
from stratum_client.secrets import Secret

__all__ = ["RestServer"]

log = structlog.get_logger(__name__)

ControlCall = Callable[[], Awaitable[float | int | None]]
MAX_QUERY_FIELDS = 16
MAX_LINE = 8190
"""Longest request line or header field aiohttp accepts (its default)."""


class _Connection(RequestHandler):
    """aiohttp's connection protocol, reporting opens and closes to the server."""

    def __init__(self, owner: RestServer, manager: web.Server, **options: object) -> None:
        super().__init__(manager, **options)  # type: ignore[arg-type]
        self.owner = owner
        self.admission = Admission.BUSY
        self.deadline: asyncio.TimerHandle | None = None
        self.forget: Callable[[], None] = lambda: None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner.opened(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.owner.closed(self)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse: one debug line and a JSON error, no traceback
        (anyone on the network can send garbage; the journal should not fill with it)."""
        if isinstance(exc, LineTooLong):
            status = 431
        log.debug("REST request refused", client=request.remote, status=status, error=message)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        reason = "request head too large" if status == 431 else "malformed request"
        if status == 500:
            reason = "internal error"
        return _to_web(rest.error(status, reason))


class RestServer(ApiServer):
    """Serves the AxeOS-compatible API and the dashboard on ``listen`` until :meth:`stop`."""

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
        history_interval: float = 60.0,
        ledger_path: Path | None = None,
        history_path: Path | None = None,
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
        self.logs = LogHub()
        if history_path is None and ledger_path is not None:
            history_path = ledger_path.parent / HISTORY_NAME
        self.history_path = history_path
        self.pages = Pages(
            state_provider, self.logs, ledger_path, history_interval=history_interval
        )
        self._web: web.Server | None = None
        self._tasks_started: list[asyncio.Task[None]] = []

    def _protocol_factory(self) -> Callable[[], asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()
        manager = self._web = web.Server(self._handle, access_log=None)
        options = {"loop": loop, "max_line_size": MAX_LINE, "max_field_size": MAX_LINE,
                   "max_headers": 64, "keepalive_timeout": 0.0, "access_log": None,
                   "lingering_time": 0.0}  # fmt: skip
        return lambda: _Connection(self, manager, **options)

    # -- connection bookkeeping ----------------------------------------------------------

    def opened(self, connection: _Connection, transport: asyncio.BaseTransport) -> None:
        """Admit the connection and arm the deadline for its request head."""
        connection.admission = self.admit(peer_host(transport))
        loop = asyncio.get_running_loop()
        connection.deadline = loop.call_later(self.read_timeout, _too_slow, transport)
        connection.forget = self.on_stop(transport.close)

    def closed(self, connection: _Connection) -> None:
        if connection.deadline is not None:
            connection.deadline.cancel()
        connection.forget()
        self.release(connection.admission)
        connection.admission = Admission.BUSY  # released once

    # -- lifecycle -----------------------------------------------------------------------

    async def _started(self) -> None:
        self.pages.open_history(self.history_path)
        self.logs.attach()
        self._tasks_started = [
            asyncio.create_task(self._sample(), name="rest-statistics"),
            asyncio.create_task(self.pages.run(), name="rest-history"),
        ]
        writes = "enabled (token)" if self.token else "disabled (read-only)"
        log.info("REST API writes", writes=writes)

    async def _stopping(self) -> None:
        for task in self._tasks_started:
            task.cancel()
        await asyncio.gather(*self._tasks_started, return_exceptions=True)
        self._tasks_started = []
        await self.pages.close_sockets()
        self.logs.detach()
        if self._web is not None:
            with contextlib.suppress(Exception):
                await self._web.shutdown(1.0)
        self.pages.close_history()

    async def _sample(self) -> None:
        """Feed the in-memory statistics ring; a failing provider must not end it."""
        while True:
            try:
                self.history.record(self.state_provider())
            except Exception:
                log.exception("REST statistics sample failed")
            await asyncio.sleep(self.stats_interval)

    # -- requests ------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        connection = protocol if isinstance(protocol, _Connection) else None
        if connection is not None and connection.deadline is not None:
            connection.deadline.cancel()
        peer = request.remote or "unknown"
        admission = connection.admission if connection else Admission.SERVE
        try:
            if admission is Admission.BUSY:
                return _to_web(rest.error(503, "too many connections"))
            if admission is Admission.LIMITED:
                return _to_web(rest.error(429, "rate limit exceeded"))
            if request.version not in (HttpVersion10, HttpVersion11):
                return _to_web(rest.error(505, "only HTTP/1.0 and HTTP/1.1 are supported"))
            page = self.pages.route(request)
            if page is not None:
                return await page
            response = await self._rest(request, peer)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:  # e.g. the state provider broke: answer, and keep serving
            log.exception("REST request failed", client=peer, path=request.path[:64])
            response = rest.error(500, "internal error")
        log.debug("REST request", client=peer, method=request.method, status=response.status)
        return _to_web(response)

    async def _rest(self, request: web.BaseRequest, peer: str) -> HttpResponse:
        body = await self._body(request)
        if isinstance(body, HttpResponse):
            return body
        if len(request.query) > MAX_QUERY_FIELDS:
            return rest.error(400, "too many query parameters")
        headers = {name.lower(): value for name, value in request.headers.items()}
        query = {name: value for name, value in request.query.items()}
        parsed = HttpRequest(request.method, request.path, query, headers, len(body), body)
        return await self._respond(parsed, peer)

    async def _body(self, request: web.BaseRequest) -> bytes | HttpResponse:
        """At most :data:`~.rest.MAX_BODY` bytes, all within the read deadline."""
        if (request.content_length or 0) > rest.MAX_BODY:
            return rest.error(413, f"request body over {rest.MAX_BODY} bytes")
        chunks = bytearray()
        try:
            async with asyncio.timeout(self.read_timeout):
                while len(chunks) <= rest.MAX_BODY:
                    chunk = await request.content.read(rest.MAX_BODY + 1 - len(chunks))
                    if not chunk:
                        return bytes(chunks)
                    chunks += chunk
        except TimeoutError:
            return rest.error(408, "request not received in time")
        return rest.error(413, f"request body over {rest.MAX_BODY} bytes")

    async def _respond(self, request: HttpRequest, peer: str) -> HttpResponse:
        source = self.pages.statistics or self.history
        outcome = rest.dispatch(request, self.state_provider(), token=self.token, history=source)
        if not isinstance(outcome, RestAction):
            if request.path == "/" and outcome.status == 200:
                return self.pages.dashboard(outcome)
            return outcome
        log.info("REST write", command=outcome.kind.value, client=peer)
        if outcome.replies_first:
            self.track(asyncio.create_task(self._run(outcome), name=f"rest-{outcome.kind.value}"))
            return rest.action_response(outcome, [ControlOutcome(True)])
        return rest.action_response(outcome, await self._run(outcome))

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
            case RestActionKind.SET_SYSTEM:
                return [
                    await call_control(
                        _setting(self.control, action, setting, name),
                        within=within,
                        what=f"{what} {setting}",
                    )
                    for setting, name in action.calls()
                ]
            case RestActionKind.PAUSE:
                call = _pause(self.control)
            case RestActionKind.RESUME:
                call = self.control.resume
            case RestActionKind.RESTART:
                await asyncio.sleep(0.05)  # let the response reach the client first
                call = self.control.restart
        return [await call_control(call, within=within, what=what)]


def _to_web(response: HttpResponse) -> web.Response:
    """The core's response as aiohttp's; every response closes its connection."""
    reply = web.Response(status=response.status, body=response.body)
    reply.headers["Content-Type"] = response.content_type
    reply.headers["Cache-Control"] = "no-store"
    reply.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in response.headers:
        reply.headers[name] = value
    reply.force_close()
    return reply


_TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
    b'Content-Length: 40\r\nConnection: close\r\n\r\n{"error":"request not received in time"}'
)


def _too_slow(transport: asyncio.BaseTransport) -> None:
    """The request head did not arrive in time: say so and hang up."""
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(_TIMEOUT_REPLY)
    transport.close()


def _set_frequency(control: MinerControl, device: str, mhz: float) -> ControlCall:
    async def call() -> float:
        return await control.set_frequency(device, mhz)

    return call


def _setting(control: MinerControl, action: RestAction, setting: str, device: str) -> ControlCall:
    """One board setting of a ``PATCH /api/system`` as a control call."""

    async def call() -> float | None:
        if setting == "frequency":
            return await control.set_frequency(device, action.mhz)
        if setting == "fanspeed":
            return await control.set_fan(device, action.fan_percent)
        assert action.core_voltage_v is not None
        return await control.set_core_voltage(device, action.core_voltage_v)

    return call


def _pause(control: MinerControl) -> ControlCall:
    async def call() -> None:
        await control.pause("REST API")

    return call
