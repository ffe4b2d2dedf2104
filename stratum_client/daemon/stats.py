"""Mining statistics: share outcomes and hashrate windows, per pool, device and chip.

Pure bookkeeping with time passed in, so the daemon, the APIs and tests read the same
figures. Hashrate is estimated from verified nonces: each nonce at ticket difficulty ``D``
stands for ``D × 2**32`` hashes on average, which is how chips are measured without
trusting their own counters.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "HASHES_PER_DIFF1",
    "WINDOWS",
    "HashrateMeter",
    "HashrateReading",
    "NonceClass",
    "NonceCounts",
    "NonceStats",
    "ShareCounts",
    "ShareStats",
    "WorkerSnapshot",
    "WorkerStats",
]

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

    def reading(self, now: float) -> HashrateReading:
        """All windows, the average and the total at once, frozen for snapshots."""
        rates = self.rates(now)
        return HashrateReading(
            rates["1m"], rates["5m"], rates["15m"], self.average(now), self.total_hashes
        )


@dataclass(frozen=True, slots=True)
class HashrateReading:
    """Hashes per second over the standard windows, read at one instant."""

    m1: float = 0.0
    m5: float = 0.0
    m15: float = 0.0
    average: float = 0.0
    total_hashes: float = 0.0
    """Hashes done since the meter started; ``/ 2**32`` gives difficulty-1 work."""


@dataclass(slots=True)
class ShareStats:
    """Outcome counters for shares, diff-weighted where pools and dashboards expect it."""

    found: int = 0
    """Shares found (submitted or not); every one ends accepted, rejected or lost."""
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
    diff1_work: float = 0.0
    """Work done on this ledger's jobs in difficulty-1 units (cgminer's ``Diff1 Shares``)."""

    def record_work(self, ticket_difficulty: float) -> None:
        """A nonce of new work (not a hw error or duplicate) at ``ticket_difficulty``."""
        self.diff1_work += ticket_difficulty

    def record_found(self, difficulty: float, *, block: bool = False) -> None:
        """A share worth submitting was found (whatever the pool later says)."""
        self.found += 1
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

    def snapshot(self) -> ShareCounts:
        """A frozen copy, safe to hand to other tasks."""
        return ShareCounts(
            found=self.found,
            accepted=self.accepted,
            rejected=self.rejected,
            stale=self.stale,
            lost=self.lost,
            accepted_difficulty=self.accepted_difficulty,
            rejected_difficulty=self.rejected_difficulty,
            best_share=self.best_share,
            blocks_found=self.blocks_found,
            rejected_by_reason=MappingProxyType(dict(self.rejected_by_reason)),
            lost_by_reason=MappingProxyType(dict(self.lost_by_reason)),
            last_share_at=self.last_share_at,
            diff1_work=self.diff1_work,
        )


_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ShareCounts:
    """:class:`ShareStats` frozen at one instant."""

    found: int = 0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    lost: int = 0
    accepted_difficulty: float = 0.0
    rejected_difficulty: float = 0.0
    best_share: float = 0.0
    blocks_found: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    lost_by_reason: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    last_share_at: float | None = None
    diff1_work: float = 0.0


class NonceClass(enum.StrEnum):
    """What one verified nonce turned out to be; each nonce gets exactly one class."""

    HW_ERROR = "hw_error"
    """Inconsistent with its work (version outside the mask, wrong hash or chip index)."""
    DUPLICATE = "duplicate"
    """Seen before: a chip re-emitting a nonce is not new work."""
    STALE = "stale"
    """Its job was invalidated (clean_jobs, pool switch, new extranonce1) or evicted."""
    BELOW_DIFFICULTY = "below_difficulty"
    """Real work, but under the pool difficulty in force: counts for hashrate only."""
    SHARE = "share"
    BLOCK = "block"
    """Also meets the network target: submitted as a share flagged ``block``."""


_NOT_NEW_WORK = frozenset({NonceClass.HW_ERROR, NonceClass.DUPLICATE})


@dataclass(frozen=True, slots=True)
class NonceCounts:
    """Nonces by class, frozen; the fields are :class:`NonceClass` values."""

    hw_error: int = 0
    duplicate: int = 0
    stale: int = 0
    below_difficulty: int = 0
    share: int = 0
    block: int = 0

    @property
    def total(self) -> int:
        return (
            self.hw_error
            + self.duplicate
            + self.stale
            + self.below_difficulty
            + self.share
            + self.block
        )


@dataclass(slots=True)
class NonceStats:
    """Counts of nonces by class, plus the hardest nonce seen (shares or not)."""

    counts: dict[NonceClass, int] = field(default_factory=lambda: dict.fromkeys(NonceClass, 0))
    best_difficulty: float = 0.0
    """AxeOS's "best difficulty": any real nonce counts, not only shares."""
    last_nonce_at: float | None = None

    def record(self, kind: NonceClass, difficulty: float, now: float) -> None:
        self.counts[kind] += 1
        self.last_nonce_at = now
        if kind not in _NOT_NEW_WORK and difficulty > self.best_difficulty:
            self.best_difficulty = difficulty

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> NonceCounts:
        return NonceCounts(**{kind.value: count for kind, count in self.counts.items()})


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """One device or chip (or all of them) frozen at one instant."""

    nonces: NonceCounts
    shares: ShareCounts
    hashrate: HashrateReading
    best_difficulty: float
    last_nonce_at: float | None


@dataclass(slots=True)
class WorkerStats:
    """Nonce classes, share outcomes and hashrate of one device, one chip, or the total.

    The meter starts when the worker starts (its first work unit or nonce), so a chain
    that comes up late is not averaged over time it spent absent.
    """

    nonces: NonceStats = field(default_factory=NonceStats)
    shares: ShareStats = field(default_factory=ShareStats)
    meter: HashrateMeter | None = None

    def start(self, now: float) -> None:
        """Start the hashrate meter (later calls do nothing)."""
        if self.meter is None:
            self.meter = HashrateMeter(started_at=now)

    def record_nonce(
        self, kind: NonceClass, difficulty: float, ticket_difficulty: float, now: float
    ) -> None:
        """Count one nonce; all but hw errors and duplicates stand for new hashing work.

        A nonce stands for ``ticket_difficulty × 2**32`` hashes whatever its own
        difficulty, because the chip reports every nonce that meets the ticket: sampling
        at a fixed threshold is what makes the estimate unbiased.
        """
        self.nonces.record(kind, difficulty, now)
        if kind not in _NOT_NEW_WORK:
            self.start(now)
            assert self.meter is not None
            self.meter.add(now, ticket_difficulty)

    def snapshot(self, now: float) -> WorkerSnapshot:
        reading = self.meter.reading(now) if self.meter is not None else HashrateReading()
        return WorkerSnapshot(
            nonces=self.nonces.snapshot(),
            shares=self.shares.snapshot(),
            hashrate=reading,
            best_difficulty=self.nonces.best_difficulty,
            last_nonce_at=self.nonces.last_nonce_at,
        )
