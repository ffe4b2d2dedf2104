"""The clock the safety loop and the board emulator share: real, or sped up for tests.

A :class:`ScaledClock` runs ``factor`` times faster than the monotonic clock, and its
:meth:`~ScaledClock.sleep` is shortened to match, so a test can run the safety policy at
its real settings (1 s polls, 5 s stall, 30 s dwell) and the thermal model at its real
time constants in a fraction of the time, with every timestamp in one time base. A
:class:`ManualClock` moves only when slept on, which makes a simulated run exact.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "MonotonicClock", "ScaledClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class MonotonicClock:
    """Wall-clock pace: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """``factor`` clock seconds pass per real second (``factor`` > 0)."""

    def __init__(self, factor: float) -> None:
        if not factor > 0:
            raise ValueError(f"clock factor must be > 0, got {factor}")
        self.factor = factor
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.factor)


class ManualClock:
    """Time moves only by :meth:`sleep` (or :meth:`advance`): simulations and benches."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
