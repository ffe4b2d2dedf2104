"""The MQTT side of the energy signals: subscribe, feed the board, reconnect forever.

A thin shell around :class:`~stratum_client.energy.signals.SignalBoard`: every message is
handed over with ``time.monotonic()`` as its arrival time, and nothing here decides
anything. A broker that is down or restarting never stops mining directly; the signals
simply age, and the governor's fail-safe acts once they are stale. The board is told why
(``link_problem``) so the decision's reason can say "broker: connection refused" instead
of only "stale". Reconnects back off exponentially with jitter, so a fleet of miners
does not hammer a broker that has just come back.

The same session also carries what the energy service publishes (governor state, the
latest ledger interval): :meth:`SignalSubscriber.publish` keeps only the newest payload
per topic and sends it retained once a session is up, so a broker outage never queues
stale states and a dashboard that connects later still sees the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import structlog

from stratum_client import mqtt_session
from stratum_client.config import MqttConfig
from stratum_client.energy.signals import SignalBoard, SignalError

__all__ = ["PUBLISH_TIMEOUT", "BrokerSettings", "SignalSubscriber"]

PUBLISH_TIMEOUT = 5.0
"""Longest wait for one outgoing publish before the session is considered broken."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where the signals are published (usually the Home Assistant broker)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_id: str | None = None
    keepalive: int = 30

    @classmethod
    def from_mqtt_config(cls, mqtt: MqttConfig) -> BrokerSettings:
        """The ``[telemetry.mqtt]`` broker; the signal client gets its own client id."""
        return cls(
            host=mqtt.host,
            port=mqtt.port,
            username=mqtt.username,
            password=mqtt.password.reveal() if mqtt.password else None,
            tls=mqtt.tls,
            ca_file=mqtt.ca_file,
            client_id=f"{mqtt.client_id}-energy" if mqtt.client_id else None,
        )

    def __repr__(self) -> str:
        shown = "***" if self.password else None
        return f"BrokerSettings(host={self.host!r}, port={self.port}, password={shown})"


class SignalSubscriber:
    """Keeps a subscription to every signal topic alive; run :meth:`run` as a task."""

    def __init__(
        self,
        board: SignalBoard,
        broker: BrokerSettings,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.board = board
        self.broker = broker
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._clock = clock
        self._jitter = jitter
        self.connected = asyncio.Event()
        self.arrived = asyncio.Event()
        """Set on every message (good or garbage): lets the governor step at once."""
        self.connections = 0
        """Successful connections so far (1 + reconnects)."""
        self._problems: dict[str, str | None] = {name: None for name in board.names}
        self.board.link_problem = "not connected yet"
        self._outbox: dict[str, bytes] = {}
        self._outbox_ready = asyncio.Event()
        self.published = 0
        """Messages handed to the broker so far (for health checks and tests)."""

    def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` retained on ``topic`` soon; replaces one not yet sent. Never blocks."""
        self._outbox[topic] = payload
        self._outbox_ready.set()

    async def run(self) -> None:
        """Connect, subscribe and feed the board until cancelled."""
        delay = self.backoff_initial
        while True:
            before = self.connections
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self._lost(str(exc) or type(exc).__name__)
            except Exception as exc:  # a bug here must not end the signal feed for good
                log.exception("energy signal client failed")
                self._lost(f"client error: {exc!r}")
            if self.connections > before:
                delay = self.backoff_initial
            wait = delay * (0.5 + 0.5 * self._jitter())
            log.debug("energy signal broker reconnect", in_seconds=round(wait, 2))
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.backoff_max)

    async def _session(self) -> None:
        async with mqtt_session.session(self._client()) as client:
            for topic in self.board.topics():
                await mqtt_session.bounded(
                    client.subscribe(topic), PUBLISH_TIMEOUT, f"subscribe to {topic}"
                )
            self.connections += 1
            self.board.link_problem = None
            self.connected.set()
            topics = len(self.board.topics())
            log.info("energy signals subscribed", broker=self.broker.host, topics=topics)
            sender = asyncio.create_task(self._send_outbox(client), name="energy-publish")
            try:
                async for message in client.messages:
                    self._deliver(message.topic.value, message.payload)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
        self._lost("connection closed")

    async def _send_outbox(self, client: aiomqtt.Client) -> None:
        """Publish the newest payload of every topic; on failure keep it for the next session."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            pending, self._outbox = self._outbox, {}
            for topic, payload in pending.items():
                try:
                    await mqtt_session.publish(
                        client, topic, payload, retain=True, within=PUBLISH_TIMEOUT
                    )
                except aiomqtt.MqttError as exc:
                    log.debug("energy publish failed; kept for the next session", error=str(exc))
                    for left, data in pending.items():
                        self._outbox.setdefault(left, data)
                    self._outbox_ready.set()
                    return  # the message loop notices the broken session and reconnects
                self.published += 1

    def _client(self) -> aiomqtt.Client:
        context = None
        if self.broker.tls:
            cafile = str(self.broker.ca_file) if self.broker.ca_file else None
            context = ssl.create_default_context(cafile=cafile)
        return mqtt_session.make_client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=self.broker.client_id,
            keepalive=self.broker.keepalive,
            tls_context=context,
        )

    def _deliver(self, topic: str, payload: object) -> None:
        if isinstance(payload, bytes | bytearray):
            data = bytes(payload)
        else:
            data = b"" if payload is None else str(payload).encode()
        self.arrived.set()
        for result in self.board.feed(topic, data, self._clock()):
            problem = result.problem if isinstance(result, SignalError) else None
            if problem == self._problems.get(result.name):
                continue  # a sensor stuck on "unavailable" is logged once, not every second
            self._problems[result.name] = problem
            if isinstance(result, SignalError):
                log.warning("energy signal rejected", problem=result.message)
            else:
                log.info("energy signal usable again", signal=result.name, value=result.value)

    def _lost(self, why: str) -> None:
        if self.connected.is_set() or self.board.link_problem != why:
            log.warning("energy signal broker unreachable", reason=why)
        self.connected.clear()
        self.board.link_problem = why
