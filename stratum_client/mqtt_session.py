"""Every aiomqtt call the daemon makes, bounded by ``asyncio.timeout`` and cancellable, and
the one reconnect loop both MQTT clients (telemetry, energy signals) run.

Why not the client's own ``timeout``: aiomqtt waits with ``asyncio.wait_for``, and on
Python 3.11 ``wait_for`` swallows a cancellation that arrives as the awaited operation
completes. A telemetry task cancelled at shutdown while a publish was being acknowledged
then lived on, publishing every interval, and the daemon's shutdown waited for it
forever. So clients are made with an infinite timeout (aiomqtt then awaits its futures
directly, which propagates cancellation) and every wait is bounded here instead. A bound
that runs out raises :class:`aiomqtt.MqttError`, which :class:`Reconnecting` treats as a
broken session.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import aiomqtt
import structlog

from stratum_client.backoff import Backoff
from stratum_client.secrets import Secret

__all__ = [
    "CONNECT_TIMEOUT",
    "LEAVE_TIMEOUT",
    "Broker",
    "Reconnecting",
    "bounded",
    "make_client",
    "publish",
    "session",
    "subscribe",
]

CONNECT_TIMEOUT: Final = 10.0
"""Longest wait for the broker to accept a connection."""
LEAVE_TIMEOUT: Final = 3.0
"""Longest wait for a clean disconnect; a broker that never acknowledges it must not
hold up shutdown (SIGTERM, service restarts)."""

_ABANDON_TIMEOUT: Final = 0.2
"""Cleanup after a connect that failed: the broker never accepted, so do not wait on it."""

_T = TypeVar("_T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Broker:
    """Where a client connects and as whom."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: Secret | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_id: str | None = None


def make_client(broker: Broker, **options: Any) -> aiomqtt.Client:
    """An aiomqtt client whose own waits are unbounded; bound them with this module."""
    context = None
    if broker.tls:
        context = ssl.create_default_context(cafile=broker.ca_file)
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.reveal() if broker.password else None,
        identifier=broker.client_id,
        tls_context=context,
        timeout=math.inf,
        **options,
    )


async def bounded(operation: Awaitable[_T], within: float, what: str) -> _T:
    """Await ``operation`` for at most ``within`` seconds; MqttError naming ``what`` after."""
    try:
        async with asyncio.timeout(within):
            return await operation
    except TimeoutError:
        raise aiomqtt.MqttError(f"{what}: no answer from the broker within {within} s") from None


async def publish(
    client: aiomqtt.Client,
    topic: str,
    payload: bytes | str,
    *,
    qos: int = 0,
    retain: bool = False,
    within: float,
) -> None:
    """Publish and wait (bounded) until the broker has it, as far as ``qos`` asks."""
    await bounded(
        client.publish(topic, payload, qos=qos, retain=retain), within, f"publish to {topic}"
    )


async def subscribe(
    client: aiomqtt.Client, topics: tuple[str, ...], *, qos: int = 0, within: float
) -> None:
    """Subscribe to each topic, waiting (bounded) for every acknowledgement."""
    for topic in topics:
        await bounded(client.subscribe(topic, qos=qos), within, f"subscribe to {topic}")


async def leave(client: aiomqtt.Client, within: float = LEAVE_TIMEOUT) -> None:
    """Disconnect, giving up quietly after ``within`` seconds."""
    with contextlib.suppress(aiomqtt.MqttError, OSError):
        await bounded(client.__aexit__(None, None, None), within, "disconnect")


@contextlib.asynccontextmanager
async def session(
    client: aiomqtt.Client, within: float = CONNECT_TIMEOUT
) -> AsyncIterator[aiomqtt.Client]:
    """Connect (bounded), yield the connected client, and always leave (bounded)."""
    try:
        await bounded(client.__aenter__(), within, "connect")
    except BaseException:
        await leave(client, _ABANDON_TIMEOUT)  # nothing to say goodbye to; just close
        raise
    try:
        yield client
    finally:
        await leave(client)


class Reconnecting:
    """Keeps one broker session going until cancelled, rebuilding it with backoff.

    Equal jitter keeps a fleet of miners from reconnecting in lock-step after a broker
    restart; the backoff starts again after every session that got established (a
    ``maximum`` below ``initial`` caps both). Each new problem is logged once, not at
    every retry.
    """

    def __init__(
        self,
        label: str,
        initial: float,
        maximum: float,
        jitter: Callable[[], float] = random.random,
        on_problem: Callable[[str | None], None] = lambda _: None,
    ) -> None:
        self.label = label
        self.backoff = Backoff(min(initial, maximum), maximum, random=jitter)
        self.on_problem = on_problem
        """Told why the broker is unreachable, and ``None`` once a session is up."""
        self.connected = asyncio.Event()
        self.connections = 0
        """Sessions established so far (1 + reconnects)."""
        self.problem: str | None = None

    def established(self) -> None:
        """The session is up (connected and subscribed): call from inside it."""
        self.connections += 1
        self.connected.set()
        self.backoff.reset()
        self.problem = None
        self.on_problem(None)

    async def run(self, session: Callable[[], Awaitable[None]]) -> NoReturn:
        """Run ``session`` again and again; its errors, even bugs, only cost a retry."""
        while True:
            why = "connection closed"
            try:
                await session()
            except* aiomqtt.MqttError as group:
                why = str(group.exceptions[0]) or type(group.exceptions[0]).__name__
            except* Exception as group:
                log.error("MQTT client failed", client=self.label, exc_info=group.exceptions[0])
                why = f"client error: {group.exceptions[0]!r}"
            self._lost(why)
            wait = self.backoff.next()
            log.debug("MQTT reconnect", client=self.label, in_seconds=round(wait, 2))
            await asyncio.sleep(wait)

    def _lost(self, why: str) -> None:
        if self.connected.is_set() or self.problem != why:
            log.warning(f"{self.label} unreachable", reason=why)
        self.connected.clear()
        self.problem = why
        self.on_problem(why)
