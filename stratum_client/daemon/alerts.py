"""The alert task: watch the daemon, ask the policy, post webhooks, never hold mining up.

Mining never waits for an alert: the policy runs once per ``interval`` on a snapshot
(O(pools + chains)) and on announced notices, and only appends to a bounded queue per
webhook (the oldest alert is dropped, and counted, when one is full). Each webhook has
its own sender task, so a dead or slow sink delays only its own alerts: every POST has
a timeout, failures are retried with the shared :class:`Backoff`, and posts are spaced
by a :class:`RateLimiter` so a flapping condition cannot flood a phone.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import structlog

from stratum_client.alerts.bodies import render
from stratum_client.alerts.config import AlertsConfig, WebhookConfig
from stratum_client.alerts.policy import Alert, AlertPolicy, ChainView, Observation, PoolView
from stratum_client.api.ratelimit import RateLimiter
from stratum_client.backoff import Backoff
from stratum_client.config import Config
from stratum_client.daemon.app import Daemon, DaemonSnapshot, Service
from stratum_client.logsetup import register_secret

__all__ = ["AlertService", "Outbox", "alert_services", "observation"]

_log = structlog.get_logger(__name__)

_DOWN_STATES = frozenset({"connecting", "failed"})


def alert_services(config: Config) -> list[Service]:
    """The alert companion when ``[alerts]`` is enabled (none otherwise)."""
    return [AlertService(config.alerts)] if config.alerts.enabled else []


def observation(snap: DaemonSnapshot) -> Observation:
    """What the policy reads from one daemon snapshot."""
    d = snap.dispatch
    return Observation(
        blocks_found=d.blocks_found,
        accepted=d.accepted,
        rejected=d.rejected,
        pools=tuple(PoolView(p.name, p.state in _DOWN_STATES, p.last_error) for p in snap.pools),
        chains=tuple(
            ChainView(c.name, c.nonces, bool(c.paused_by) or c.state == "paused", c.last_error)
            for c in snap.chains
        ),
        has_work=d.session_up,
    )


@dataclass(frozen=True, slots=True)
class _Delivery:
    alert: Alert
    at: float
    """Unix time the alert was raised (shown in the body, not when it was posted)."""


@dataclass(slots=True)
class Outbox:
    """One webhook's queue and what became of its alerts (for logs, tests and the docs)."""

    webhook: WebhookConfig
    size: int
    queue: deque[_Delivery] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0

    def put(self, delivery: _Delivery) -> None:
        if len(self.queue) >= self.size:
            self.queue.popleft()
            self.dropped += 1
            _log.warning("alert queue full; oldest alert dropped", webhook=self.webhook.name)
        self.queue.append(delivery)
        self.ready.set()

    async def get(self) -> _Delivery:
        while not self.queue:
            self.ready.clear()
            await self.ready.wait()
        return self.queue.popleft()


class AlertService:
    """Daemon companion: the policy over snapshots and notices, and one sender per webhook."""

    def __init__(
        self,
        config: AlertsConfig,
        *,
        host: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.policy = AlertPolicy(config)
        self.host = host or socket.gethostname()
        self._wall = wall_clock
        self._clock = clock
        self.outboxes = {hook.name: Outbox(hook, config.queue_size) for hook in config.webhooks}
        self._limiter = RateLimiter(
            rate=config.rate_per_minute / 60.0,
            burst=float(config.burst),
            max_clients=len(config.webhooks) + 1,
        )
        self._observing = False
        for hook in config.webhooks:
            register_secret(hook.url)

    def __repr__(self) -> str:
        return f"AlertService({', '.join(self.outboxes) or 'no webhooks'})"

    def raise_alerts(self, alerts: Iterable[Alert]) -> None:
        """Queue ``alerts`` for every webhook that takes their kind; returns at once."""
        for alert in alerts:
            _log.warning("alert", kind=alert.kind, title=alert.title, message=alert.message)
            delivery = _Delivery(alert, self._wall())
            for box in self.outboxes.values():
                if alert.kind in box.webhook.kinds:
                    box.put(delivery)

    def on_notice(self, notice: object) -> None:
        """Daemon observer: notices (a board's safe state) may raise alerts."""
        self.raise_alerts(self.policy.on_notice(notice))

    async def __call__(self, daemon: Daemon) -> None:
        if not self._observing:  # a restarted service must not observe twice
            daemon.observe(self.on_notice)
            self._observing = True
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
            for box in self.outboxes.values():
                tasks.create_task(self._send_all(box, session), name=f"alerts-{box.webhook.name}")
            tasks.create_task(self._watch(daemon), name="alerts-watch")

    async def _watch(self, daemon: Daemon) -> None:
        while True:
            snap = daemon.snapshot()
            if not snap.stopping:  # a clean shutdown is not a dead chain or a pool down
                self.raise_alerts(self.policy.observe(observation(snap), snap.dispatch.at))
            await asyncio.sleep(self.config.interval)

    async def _send_all(self, box: Outbox, session: aiohttp.ClientSession) -> None:
        while True:
            delivery = await box.get()
            while not self._limiter.allow(box.webhook.name, self._clock()):  # noqa: ASYNC110 - a token bucket refills with time, no event to wait on
                await asyncio.sleep(60.0 / self.config.rate_per_minute / 4)
            await self._send(box, session, delivery)

    async def _send(self, box: Outbox, session: aiohttp.ClientSession, delivery: _Delivery) -> None:
        """POST one alert, retrying transient failures; give up after ``retries``."""
        hook = box.webhook
        backoff = Backoff(self.config.retry_initial, self.config.retry_max)
        error = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(backoff.next())
            box.attempts += 1
            error, permanent = await self._post(session, hook, delivery)
            if not error:
                box.sent += 1
                _log.info("alert sent", webhook=hook.name, kind=delivery.alert.kind)
                return
            if permanent:
                break
        box.failed += 1
        _log.warning(
            "alert not delivered", webhook=hook.name, kind=delivery.alert.kind, error=error
        )

    async def _post(
        self, session: aiohttp.ClientSession, hook: WebhookConfig, delivery: _Delivery
    ) -> tuple[str, bool]:
        """("", False) when delivered, else (why, whether retrying cannot help)."""
        request = render(delivery.alert, hook.format, host=self.host, at=delivery.at)
        timeout = aiohttp.ClientTimeout(total=hook.timeout)
        try:
            async with session.post(
                hook.url, data=request.body, headers=dict(request.headers), timeout=timeout
            ) as reply:
                await reply.read()
                if 200 <= reply.status < 300:
                    return "", False
                permanent = 400 <= reply.status < 500 and reply.status not in (408, 429)
                return f"HTTP {reply.status}", permanent
        except TimeoutError:
            return f"no answer within {hook.timeout:g} s", False
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}", False
