"""The one retry backoff: how long to wait before the next attempt. No I/O, no clock.

Every reconnecting part of the daemon (pools, MQTT brokers, serial devices, API listeners)
asks a :class:`Backoff` for its next pause and tells it when an attempt succeeded. The
jitter is what keeps a fleet of miners from reconnecting in lock-step after a shared
outage; serial devices have nobody to compete with, so they use none.

* ``"none"``: ``initial, initial·factor, …`` capped at ``maximum``.
* ``"equal"``: the same sequence, each pause drawn from its upper half (``d·(0.5 + 0.5·r)``).
* ``"decorrelated"``: uniform between ``initial`` and three times the previous pause, capped;
  it spreads retries best when many clients failed at the same instant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Backoff", "Jitter"]

Jitter = Literal["none", "equal", "decorrelated"]


@dataclass(slots=True)
class Backoff:
    """Pauses between retries; :meth:`reset` after a success starts the sequence again."""

    initial: float
    maximum: float
    jitter: Jitter = "equal"
    factor: float = 2.0
    random: Callable[[], float] = field(default=random.random, repr=False)
    """A ``[0, 1)`` source; tests pass a seeded one to replay a sequence."""
    _step: float = field(default=0.0, init=False, repr=False)
    """The un-jittered pause of the next attempt (none, equal), or the last one drawn."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise ValueError(f"backoff initial delay must be positive, not {self.initial!r}")
        if not (math.isfinite(self.maximum) and self.maximum >= self.initial):
            raise ValueError(
                f"backoff maximum {self.maximum!r} must be finite and at least {self.initial!r}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be at least 1, not {self.factor!r}")

    def next(self) -> float:
        """The pause before the next attempt."""
        if self.jitter == "decorrelated":
            upper = max(self.initial, self._step * 3.0)
            self._step = min(self.maximum, self.initial + (upper - self.initial) * self.random())
            return self._step
        step = self._step or self.initial
        self._step = min(step * self.factor, self.maximum)
        if self.jitter == "equal":
            return step * (0.5 + 0.5 * self.random())
        return step

    def reset(self) -> None:
        """An attempt succeeded: the next failure starts from ``initial`` again."""
        self._step = 0.0

    def delays(self) -> Iterator[float]:
        """:meth:`next`, forever: for a bounded retry loop written as ``for``."""
        while True:
            yield self.next()
