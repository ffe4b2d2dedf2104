"""What the HTTP server serves beyond the AxeOS routes: dashboard, live log, metrics, history.

- ``GET /`` is the dashboard page (package data in :mod:`stratum_client.web`); it still
  carries the "not AxeOS" sentence pyasic's detection reads.
- ``GET /static/<file>`` its script and style sheet (no CDN: the page works offline).
- ``GET /api/ws`` the AxeOS live log as text frames (:class:`~.rest_logs.LogHub`).
- ``GET /metrics`` Prometheus text from :class:`~.rest_metrics.MinerCollector`.
- ``GET /api/history?since=<s>`` every history series as ``[unix s, value]`` points.
- ``GET /api/dashboard`` one snapshot shaped for the page: rates, shares, pools, chains,
  chips and the energy ledger's last 24 h.

:meth:`Pages.run` samples the history every ``history_interval`` seconds and turns share
counts that grew into "share accepted/rejected" lines on the live log each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path

import structlog
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stratum_client.api import rest
from stratum_client.api.model import MinerState, StateProvider
from stratum_client.api.rest import HttpResponse
from stratum_client.api.rest_history import sample_of, statistics_row
from stratum_client.api.rest_http import json_response
from stratum_client.api.rest_logs import LogHub, format_line
from stratum_client.api.rest_metrics import MinerCollector, registry_for
from stratum_client.api.rest_summary import dashboard_summary
from stratum_client.energy.ledger import Ledger, Totals
from stratum_client.errors import StratumClientError
from stratum_client.history import HistoryStore
from stratum_client.history.sample import RETENTION

__all__ = ["Pages", "StoredStatistics"]

log = structlog.get_logger(__name__)

STATIC = {"app.js": "text/javascript", "style.css": "text/css", "chart.js": "text/javascript"}
MAX_LOG_CLIENTS = 8
"""Live-log websockets at once (each holds one of the server's connections)."""
SHARE_WATCH = 1.0
"""Seconds between checks for new share results (live-log lines)."""


class StoredStatistics:
    """``/api/system/statistics`` rows from the history file (times since this start)."""

    def __init__(self, store: HistoryStore, state_provider: StateProvider) -> None:
        self.store = store
        self.state_provider = state_provider

    def rows(self) -> Iterable[tuple[int, Sequence[float]]]:
        started = self.state_provider().started_at
        for sample in self.store.samples():
            yield int((sample.when - started) * 1000), statistics_row(sample)


class Pages:
    """The non-AxeOS routes and the background work that feeds them."""

    def __init__(
        self,
        state_provider: StateProvider,
        logs: LogHub,
        ledger_path: Path | None,
        *,
        history_interval: float = 60.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state_provider = state_provider
        self.logs = logs
        self.store: HistoryStore | None = None
        self.ledger_path = ledger_path
        self.history_interval = history_interval
        self._wall = wall
        self._ledger: Ledger | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.metrics = registry_for(MinerCollector(state_provider, self.energy))
        self.statistics: StoredStatistics | None = None

    def open_history(self, path: Path | None) -> None:
        """Open the history file; without one (or if it cannot open) charts start empty."""
        if path is None:
            return
        try:
            self.store = HistoryStore(path)
        except StratumClientError as exc:
            log.warning("no history file: charts start empty", error=str(exc))
            return
        self.statistics = StoredStatistics(self.store, self.state_provider)

    def close_history(self) -> None:
        if self.store is not None:
            self.store.close()
        self.store = None
        self.statistics = None

    # -- routing -------------------------------------------------------------------------

    def route(self, request: web.BaseRequest) -> Awaitable[web.StreamResponse] | None:
        """The handler for ``request`` if it is one of these pages, else None."""
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.path
        if path == "/api/ws":
            return self._websocket(request)
        if path.startswith("/static/") and path[8:] in STATIC:
            return _done(_static(path[8:]))
        simple: dict[str, Callable[[web.BaseRequest], web.Response]] = {
            "/metrics": self._metrics,
            "/api/history": self._history,
            "/api/dashboard": self._dashboard_json,
        }
        handler = simple.get(path)
        return _done(handler(request)) if handler else None

    def dashboard(self, honest: HttpResponse) -> HttpResponse:
        """The dashboard page in place of the plain index (which it falls back to)."""
        try:
            page = resources.files("stratum_client.web").joinpath("index.html").read_bytes()
        except OSError:
            return honest
        return HttpResponse(200, page, "text/html; charset=utf-8")

    def _metrics(self, _request: web.BaseRequest) -> web.Response:
        reply = web.Response(body=generate_latest(self.metrics))
        reply.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return reply

    def _history(self, request: web.BaseRequest) -> web.Response:
        now = self.state_provider().when  # the clock the samples were stamped with
        try:
            window = min(max(float(request.query.get("since", RETENTION)), 0.0), RETENTION)
        except ValueError:
            return _json(rest.error(400, "since must be a number of seconds"))
        points: dict[str, list[tuple[float, float]]] = {}
        if self.store is not None:
            points = self.store.series(now - window)
        return _json(json_response(200, {"now": now, "series": points}))

    def _dashboard_json(self, _request: web.BaseRequest) -> web.Response:
        state = self.state_provider()
        recent = self.store.samples(state.when - 3600) if self.store is not None else []
        summary = dashboard_summary(state, recent, self.energy())
        return _json(json_response(200, summary))

    def energy(self) -> Totals | None:
        """The ledger's last 24 h, or None without a ledger (it may appear later)."""
        if self.ledger_path is None:
            return None
        try:
            if self._ledger is None:
                if not self.ledger_path.is_file():
                    return None
                self._ledger = Ledger.open_readonly(self.ledger_path)
            return self._ledger.totals(since=self._wall() - RETENTION)
        except StratumClientError as exc:
            log.debug("energy ledger not readable", error=str(exc))
            return None

    # -- live log ------------------------------------------------------------------------

    async def _websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        socket = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        if not socket.can_prepare(request).ok:
            return _json(rest.error(400, "/api/ws is a websocket: send an upgrade request"))
        if len(self._sockets) >= MAX_LOG_CLIENTS:
            return _json(rest.error(503, f"at most {MAX_LOG_CLIENTS} live-log clients"))
        await socket.prepare(request)
        client = self.logs.subscribe()
        self._sockets.add(socket)
        sender = asyncio.create_task(self._send_lines(socket, client.queue))
        dropped = asyncio.create_task(client.dropped.wait())
        reader = asyncio.create_task(_drain(socket))
        try:
            await asyncio.wait([sender, dropped, reader], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, dropped, reader):
                task.cancel()
            self.logs.unsubscribe(client)
            self._sockets.discard(socket)
            if client.dropped.is_set():
                log.info("live-log client too slow; dropped", client=request.remote)
            await socket.close()
        return socket

    async def _send_lines(self, socket: web.WebSocketResponse, queue: asyncio.Queue[str]) -> None:
        while True:
            await socket.send_str(await queue.get())

    async def close_sockets(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()

    # -- background ----------------------------------------------------------------------

    async def run(self) -> None:
        """History samples and share lines until cancelled; failures are logged, not fatal."""
        last_sample = -float("inf")
        seen: tuple[int, int] | None = None
        while True:
            try:
                state = self.state_provider()
                seen = self._share_lines(state, seen)
                if self.store is not None and state.when - last_sample >= self.history_interval:
                    self.store.append(sample_of(state))
                    last_sample = state.when
            except Exception:
                log.exception("history sample failed")
            await asyncio.sleep(min(SHARE_WATCH, self.history_interval))

    def _share_lines(self, state: MinerState, seen: tuple[int, int] | None) -> tuple[int, int]:
        now = (state.accepted, state.rejected)
        if seen is not None:
            for word, count in (("accepted", now[0] - seen[0]), ("rejected", now[1] - seen[1])):
                if count > 0:
                    event = {"event": f"share {word}", "level": "info", "count": count}
                    self.logs.publish(format_line(event, state.when))
        return now


async def _done(response: web.StreamResponse) -> web.StreamResponse:
    return response


async def _drain(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) what the browser sends, until it closes."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


def _static(name: str) -> web.Response:
    body = resources.files("stratum_client.web").joinpath(name).read_bytes()
    reply = web.Response(body=body)
    reply.headers["Content-Type"] = f"{STATIC[name]}; charset=utf-8"
    reply.headers["Cache-Control"] = "no-cache"
    return reply


def _json(response: HttpResponse) -> web.Response:
    reply = web.Response(status=response.status, body=response.body)
    reply.headers["Content-Type"] = response.content_type
    reply.headers["Cache-Control"] = "no-store"
    return reply
