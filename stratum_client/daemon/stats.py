"""Mining statistics: share outcomes and hashrate windows, per pool, device and chip.

Pure bookkeeping with time passed in, so the daemon, the APIs and tests read the same
figures. Hashrate is estimated from verified nonces: each nonce at ticket difficulty ``D``
stands for ``D × 2**32`` hashes on average, which is how chips are measured without
trusting their own counters.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

__all__ = ["HASHES_PER_DIFF1", "WINDOWS", "HashrateMeter", "ShareStats"]

HASHES_PER_DIFF1 = 2**32
WINDOWS: tuple[tuple[str, float], ...] = (("1m", 60.0), ("5m", 300.0), ("15m", 900.0))
_BUCKET_SECONDS = 5.0


@dataclass(slots=True)
class HashrateMeter:
    """Hashes done, summed in 5-second buckets over the longest window.

    Buckets keep memory constant however many nonces arrive: 180 buckets cover 15 min.
    """

    started_at: float
    _buckets: deque[tuple[float, float]] = field(default_factory=deque)
    total_hashes: float = 0.0

    def add(self, now: float, difficulty: float) -> None:
        """Account one nonce found at ``difficulty``."""
        hashes = difficulty * HASHES_PER_DIFF1
        self.total_hashes += hashes
        start = now - (now % _BUCKET_SECONDS)
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1] = (start, self._buckets[-1][1] + hashes)
        else:
            self._buckets.append((start, hashes))
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - WINDOWS[-1][1] - _BUCKET_SECONDS
        while self._buckets and self._buckets[0][0] < horizon:
            self._buckets.popleft()

    def rate(self, now: float, window: float) -> float:
        """Hashes per second over the last ``window`` seconds (or since start if shorter)."""
        self._expire(now)
        span = min(window, max(now - self.started_at, 1e-9))
        since = now - span
        done = sum(h for start, h in self._buckets if start + _BUCKET_SECONDS > since)
        return done / span

    def average(self, now: float) -> float:
        """Hashes per second since the meter started."""
        return self.total_hashes / max(now - self.started_at, 1e-9)

    def rates(self, now: float) -> dict[str, float]:
        """Hashes per second for each standard window, keyed ``1m``/``5m``/``15m``."""
        return {name: self.rate(now, seconds) for name, seconds in WINDOWS}


@dataclass(slots=True)
class ShareStats:
    """Outcome counters for shares, diff-weighted where pools and dashboards expect it."""

    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    accepted_difficulty: float = 0.0
    rejected_difficulty: float = 0.0
    best_share: float = 0.0
    blocks_found: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    lost_by_reason: Counter[str] = field(default_factory=Counter)
    last_share_at: float | None = None

    def record_found(self, difficulty: float, *, block: bool = False) -> None:
        """A share worth submitting was found (whatever the pool later says)."""
        self.best_share = max(self.best_share, difficulty)
        if block:
            self.blocks_found += 1

    def record_accepted(self, difficulty: float, now: float) -> None:
        self.accepted += 1
        self.accepted_difficulty += difficulty
        self.last_share_at = now

    def record_rejected(self, difficulty: float, reason: str, *, stale: bool = False) -> None:
        self.rejected += 1
        self.rejected_difficulty += difficulty
        self.rejected_by_reason[reason] += 1
        if stale:
            self.stale += 1

    def record_lost(self, reason: str) -> None:
        """A found share that could not be submitted, with why (never silently dropped)."""
        self.lost_by_reason[reason] += 1

    @property
    def lost(self) -> int:
        return sum(self.lost_by_reason.values())
