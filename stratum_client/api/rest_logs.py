"""The live log behind ``/api/ws``: structlog events fanned out to websocket clients.

AxeOS streams its log as text frames on ``/api/ws``; dashboards show them as they come.
:class:`LogHub` taps the log through :func:`~stratum_client.logsetup.add_log_tap` (it sees
the events that passed the level filters), and fans lines out to bounded per-client queues.
Publishing never waits: a client whose queue is full is dropped (its socket is closed by its sender
task), so a slow browser can never hold up the code that logged, least of all mining.
Each line is redacted with the same rules as the journal before it leaves the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

from stratum_client.logsetup import add_log_tap, redact

__all__ = ["CLIENT_QUEUE", "LogClient", "LogHub", "format_line"]

CLIENT_QUEUE = 256
"""Lines a client may fall behind by before it is dropped."""
_SKIP = frozenset(
    {"event", "level", "logger", "timestamp", "exc_info", "_record", "_from_structlog"}
)


def format_line(event: MutableMapping[str, Any], when: float) -> str:
    """One log line: UTC time, level, logger, event, then ``key=value`` pairs."""
    stamp = time.strftime("%H:%M:%S", time.gmtime(when))
    level = str(event.get("level", "info"))
    logger = str(event.get("logger", ""))
    fields = " ".join(f"{k}={event[k]}" for k in event if k not in _SKIP)
    text = f"{stamp} {level} {logger}: {event.get('event', '')}"
    return f"{text} {fields}" if fields else text


class LogClient:
    """One websocket's queue; ``dropped`` is set when it fell too far behind."""

    def __init__(self, size: int = CLIENT_QUEUE) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.dropped = asyncio.Event()

    def offer(self, line: str) -> None:
        if self.dropped.is_set():
            return
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped.set()


class LogHub:
    """Fans log lines out to :class:`LogClient` queues on one event loop."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clients: set[LogClient] = set()
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._untap: Callable[[], None] | None = None

    def attach(self) -> None:
        """Bind to the running loop and tap the log (see :mod:`stratum_client.logsetup`)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        if self._untap is None:
            self._untap = add_log_tap(self.processor)

    def detach(self) -> None:
        if self._untap is not None:
            self._untap()
            self._untap = None
        self._loop = None

    def subscribe(self, size: int = CLIENT_QUEUE) -> LogClient:
        client = LogClient(size)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: LogClient) -> None:
        self.clients.discard(client)

    def publish(self, line: str) -> None:
        """Offer ``line`` to every client; safe from any thread, never blocks."""
        loop = self._loop
        if loop is None or not self.clients:
            return
        if threading.get_ident() == self._thread:
            self._fan_out(line)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._fan_out, line)

    def _fan_out(self, line: str) -> None:
        for client in list(self.clients):
            client.offer(line)

    def processor(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> None:
        """The tap: copy, redact and publish; the event itself is left as it was."""
        if self.clients:
            copy = redact(logger, method, dict(event_dict))
            copy.setdefault("level", method)
            self.publish(format_line(copy, self._clock()))
