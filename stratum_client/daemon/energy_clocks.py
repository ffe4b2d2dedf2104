"""The energy service's clocks, optionally sped up for replays and demos.

The governor reads a monotonic clock (signal ages, dwell) and the ledger a wall clock
(interval boundaries); with ``scale`` > 1 both run that many times faster than real
time from the moment they were made, so a day of signals replays in minutes.
"""

from __future__ import annotations

import math
import time

__all__ = ["ScaledClocks"]


class ScaledClocks:
    """The governor's and the ledger's clocks, optionally sped up (replays, demos)."""

    def __init__(self, scale: float) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"time_scale must be a positive number, got {scale!r}")
        self.scale = scale
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        if self.scale == 1.0:
            return time.monotonic()
        return self._mono0 + (time.monotonic() - self._mono0) * self.scale

    def wall(self) -> float:
        if self.scale == 1.0:
            return time.time()
        return self._wall0 + (time.monotonic() - self._mono0) * self.scale
