"""The MQTT side of the energy signals: subscribe, feed the board, reconnect forever.

A thin shell around :class:`~stratum_client.energy.signals.SignalBoard`: every message is
handed over with ``time.monotonic()`` as its arrival time, and nothing here decides
anything. A broker that is down or restarting never stops mining directly; the signals
simply age, and the governor's fail-safe acts once they are stale. The board is told why
(``link_problem``) so the decision's reason can say "broker: connection refused" instead
of only "stale".

The same session also carries what the energy service publishes (governor state, the
latest ledger interval): :meth:`SignalSubscriber.publish` keeps only the newest payload
per topic and sends it retained once a session is up, so a broker outage never queues
stale states and a dashboard that connects later still sees the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import aiomqtt
import structlog

from stratum_client import mqtt_session
from stratum_client.energy.signals import SignalBoard, SignalError
from stratum_client.mqtt_session import Broker

__all__ = ["KEEPALIVE", "PUBLISH_TIMEOUT", "SignalSubscriber"]

PUBLISH_TIMEOUT = 5.0
"""Longest wait for one outgoing publish before the session is considered broken."""
KEEPALIVE = 30

log = structlog.get_logger(__name__)


class SignalSubscriber:
    """Keeps a subscription to every signal topic alive; run :meth:`run` as a task."""

    def __init__(
        self,
        board: SignalBoard,
        broker: Broker,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.board = board
        self.broker = broker
        self._clock = clock
        self.link = mqtt_session.Reconnecting(
            "energy signal broker", backoff_initial, backoff_max, jitter, self._link_problem
        )
        self.connected = self.link.connected
        self.arrived = asyncio.Event()
        """Set on every message (good or garbage): lets the governor step at once."""
        self._problems: dict[str, str | None] = {name: None for name in board.names}
        self.board.link_problem = "not connected yet"
        self._outbox: dict[str, bytes] = {}
        self._outbox_ready = asyncio.Event()
        self.published = 0
        """Messages handed to the broker so far (for health checks and tests)."""

    @property
    def connections(self) -> int:
        """Successful connections so far (1 + reconnects)."""
        return self.link.connections

    def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` retained on ``topic`` soon; replaces one not yet sent. Never blocks."""
        self._outbox[topic] = payload
        self._outbox_ready.set()

    async def run(self) -> None:
        """Connect, subscribe and feed the board until cancelled."""
        await self.link.run(self._session)

    def _link_problem(self, problem: str | None) -> None:
        self.board.link_problem = problem

    async def _session(self) -> None:
        client = mqtt_session.make_client(self.broker, keepalive=KEEPALIVE)
        async with mqtt_session.session(client):
            topics = self.board.topics()
            await mqtt_session.subscribe(client, topics, within=PUBLISH_TIMEOUT)
            self.link.established()
            log.info("energy signals subscribed", broker=self.broker.host, topics=len(topics))
            sender = asyncio.create_task(self._send_outbox(client), name="energy-publish")
            try:
                async for message in client.messages:
                    self._deliver(message.topic.value, message.payload)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

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
