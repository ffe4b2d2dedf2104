"""Shared by the tests that watch live components: a polling deadline and an MQTT watcher.

Importable from any test module (pytest puts ``tests/`` on the path for its conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import aiomqtt

WAIT = 45.0
"""Default deadline for anything awaited (never asserted as a duration)."""


async def wait_until(what: str, predicate: Callable[[], bool], limit: float = WAIT) -> None:
    """Poll until ``predicate`` holds; ``limit`` is a deadline, not a measurement."""
    try:
        async with asyncio.timeout(limit):
            while not predicate():  # noqa: ASYNC110 - live state has no event to wait on
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for: {what}") from None


class Watcher:
    """A separate MQTT client recording ``(topic, payload, retained)`` on some filters."""

    def __init__(self, port: int, *filters: str, **options: Any) -> None:
        """``options`` go to the client (``username``/``password`` for a locked broker)."""
        assert filters, "say which topics to watch"
        self.client = aiomqtt.Client("127.0.0.1", port, timeout=10, **options)
        self.filters = filters
        self.messages: list[tuple[str, bytes, bool]] = []
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        for topic in self.filters:
            await self.client.subscribe(topic, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._reader is not None
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(5.0):
                await self.client.__aexit__(kind, exc, tb)

    async def _read(self) -> None:
        async for message in self.client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append((message.topic.value, raw, message.retain))

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for name, payload, _ in self.messages if name == topic]

    def has(self, topic: str) -> bool:
        return bool(self.payloads(topic))

    def latest(self, topic: str) -> Any:
        return json.loads(self.payloads(topic)[-1])

    def documents(self, topic: str) -> list[Any]:
        return [json.loads(p) for p in self.payloads(topic) if p]

    async def document(
        self, topic: str, predicate: Callable[[Any], bool], limit: float = WAIT
    ) -> Any:
        """The first JSON document on ``topic`` that satisfies ``predicate`` (waits)."""
        await wait_until(
            f"a message on {topic}",
            lambda: any(predicate(d) for d in self.documents(topic)),
            limit,
        )
        return next(d for d in self.documents(topic) if predicate(d))

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def result(self, topic: str, request_id: str, limit: float = 10.0) -> dict[str, Any]:
        """The command result for ``request_id`` published on ``topic``."""
        found: dict[str, Any] = await self.document(
            topic, lambda d: d["request_id"] == request_id, limit
        )
        return found
