"""A clock and a sleep for the pool manager that a test can skip ahead.

It runs at the pace of the real clock, so sockets and the local pools keep theirs, and
:meth:`SkippableTime.skip` moves it forward at once: every manager timer due meanwhile
(probe ticks, reconnect pauses, session polls) fires in order, with the event loop let run
between jumps so what they start (a probe's connect) happens. A test that waited "nothing
happens for X seconds" in wall time skips X instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

__all__ = ["SkippableTime"]

_JUMP = 0.05
"""Largest single jump: timers due within one jump fire together."""
_SETTLE = 0.005
"""Real seconds the loop runs after each jump (connects to 127.0.0.1 take less)."""


class SkippableTime:
    """``clock()`` and ``await sleep(s)`` for :class:`PoolManager`, plus ``skip(s)``."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._jumped = asyncio.Event()
        self.skipped = 0.0
        """Seconds skipped so far (the clock is this far ahead of the real one)."""

    def __call__(self) -> float:
        return time.monotonic() + self._offset

    async def sleep(self, seconds: float) -> None:
        deadline = self() + seconds
        while (left := deadline - self()) > 0:
            jumped = self._jumped
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await jumped.wait()

    async def skip(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead (plus the little real time the jumps take)."""
        left = seconds
        while left > 0:
            jump = min(_JUMP, left)
            left -= jump
            self._offset += jump
            self.skipped += jump
            jumped, self._jumped = self._jumped, asyncio.Event()
            jumped.set()
            await asyncio.sleep(_SETTLE)
