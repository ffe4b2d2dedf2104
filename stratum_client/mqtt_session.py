"""Every aiomqtt call the daemon makes, bounded by ``asyncio.timeout`` and cancellable.

Why not the client's own ``timeout``: aiomqtt waits with ``asyncio.wait_for``, and on
Python 3.11 ``wait_for`` swallows a cancellation that arrives as the awaited operation
completes. A telemetry task cancelled at shutdown while a publish was being acknowledged
then lived on, publishing every interval, and the daemon's shutdown waited for it
forever. So clients are made with an infinite timeout (aiomqtt then awaits its futures
directly, which propagates cancellation) and every wait is bounded here instead. A bound
that runs out raises :class:`aiomqtt.MqttError`, which the reconnect loops already treat
as a broken session.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Final, TypeVar

import aiomqtt

__all__ = ["CONNECT_TIMEOUT", "LEAVE_TIMEOUT", "bounded", "make_client", "publish", "session"]

CONNECT_TIMEOUT: Final = 10.0
"""Longest wait for the broker to accept a connection."""
LEAVE_TIMEOUT: Final = 3.0
"""Longest wait for a clean disconnect; a broker that never acknowledges it must not
hold up shutdown (SIGTERM, service restarts)."""

_ABANDON_TIMEOUT: Final = 0.2
"""Cleanup after a connect that failed: the broker never accepted, so do not wait on it."""

_T = TypeVar("_T")


def make_client(host: str, port: int, **options: Any) -> aiomqtt.Client:
    """An aiomqtt client whose own waits are unbounded; bound them with this module."""
    return aiomqtt.Client(host, port, timeout=math.inf, **options)


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
