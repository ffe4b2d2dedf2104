"""The dispatcher's state per pool and per chain, and the pure checks on one nonce.

:class:`PoolWork` is what the dispatcher knows of a pool beyond its job table (session
up, vardiff, share counters); :class:`Chain` is one chain's counters; :func:`judge` gives
a nonce its class from the job table's answer and the difficulty in force.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from stratum_client.asic.records import FoundNonce
from stratum_client.daemon.dispatch_records import ChainSpec, DeviceSnapshot, PoolSnapshot
from stratum_client.daemon.stats import NonceClass, ShareStats, WorkerStats
from stratum_client.errors import WorkError
from stratum_client.protocol.jobs import JobEntry, JobTable
from stratum_client.work.builder import JobBuilder
from stratum_client.work.job import Job, Work
from stratum_client.work.target import DIFF1_TARGET, difficulty_to_target, nbits_to_target
from stratum_client.work.versionroll import version_bits

__all__ = ["DEDUPE_WINDOW", "Chain", "DedupeWindow", "PoolWork", "Verdict", "build_next", "judge"]

_log = structlog.get_logger("stratum_client.daemon.dispatcher")

DEDUPE_WINDOW = 65536
"""Nonce keys remembered for duplicate detection (about 8 MiB when full)."""

_NonceKey = tuple[str, bytes, bytes, int, int, int]


@dataclass(slots=True, eq=False)
class PoolWork:
    """The dispatcher's view of one pool: its session, difficulty and share counters."""

    index: int
    table: JobTable
    name: str = ""
    up: bool = False
    session_job: bool = False
    """The current session has sent a job. Until it has, shares wait: the session could
    not name their job, and would refuse them as unknown."""
    feeding: Job | None = None
    """The newest job when the chains were last given work from this pool."""
    difficulty: float | None = None
    difficulty_since_down: bool = False
    submit_below: bool = True
    """Its ``submit_block_candidates_below_difficulty`` (from ``PoolUp``)."""
    stats: ShareStats = field(default_factory=ShareStats)

    def difficulty_for(self, job: Job) -> float:
        """The difficulty in force now; the job's own only until the pool sets one."""
        return job.difficulty if self.difficulty is None else self.difficulty

    def current_difficulty(self) -> float | None:
        if self.difficulty is not None:
            return self.difficulty
        newest = self.table.newest()
        return None if newest is None else newest.difficulty

    def snapshot(self, *, active: bool, pending: int, in_flight: int) -> PoolSnapshot:
        return PoolSnapshot(
            index=self.index,
            name=self.name,
            active=active,
            session_up=self.up,
            difficulty=self.current_difficulty(),
            version_mask=self.table.version_mask,
            extranonce1=self.table.extranonce1,
            jobs=len(self.table) if active else 0,
            pending=pending,
            in_flight=in_flight,
            shares=self.stats.snapshot(),
        )

    def work_void(self) -> bool:
        """The job the chains were fed is no longer live: their work can only be stale."""
        fed = self.feeding
        self.feeding = self.table.newest()
        return fed is not None and not isinstance(self.table.classify(fed), JobEntry)


@dataclass(slots=True, eq=False)
class Chain:
    """One chain the dispatcher feeds, with its own and its chips' counters."""

    spec: ChainSpec
    device: WorkerStats = field(default_factory=WorkerStats)
    chips: list[WorkerStats] = field(default_factory=list)

    def start(self, now: float) -> None:
        if self.device.meter is None:
            self.device.start(now)
            for chip in self.chips:
                chip.start(now)

    def workers(self, chip: int) -> tuple[WorkerStats, ...]:
        if 0 <= chip < len(self.chips):
            return (self.device, self.chips[chip])
        return (self.device,)

    def snapshot(self, now: float) -> DeviceSnapshot:
        return DeviceSnapshot(
            name=self.spec.name,
            ticket_difficulty=self.spec.ticket_difficulty,
            total=self.device.snapshot(now),
            chips=tuple(chip.snapshot(now) for chip in self.chips),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: NonceClass
    difficulty: float = 0.0
    bits: int = 0
    pool: PoolWork | None = None
    meets_pool: bool = False
    """It meets the pool's share target (stale nonces: so a share is lost)."""


class DedupeWindow:
    """The last ``size`` nonce keys; an insertion-ordered dict forgets the oldest first."""

    __slots__ = ("_seen", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: dict[_NonceKey, None] = {}

    def seen_before(self, found: FoundNonce) -> bool:
        work, job = found.work, found.work.job
        key = (
            job.job_id, job.extranonce1, work.extranonce2, work.ntime, found.nonce, found.version
        )  # fmt: skip
        seen = self._seen
        if key in seen:
            return True
        seen[key] = None
        if len(seen) > self._size:
            del seen[next(iter(seen))]
        return False


def judge(
    found: FoundNonce,
    chips: int,
    *,
    entry: JobEntry | None,
    source: PoolWork | None,
    pool_of: Callable[[Job], PoolWork | None],
    window: DedupeWindow,
) -> Verdict:
    """One nonce's class: ``entry`` is its job's live entry in the active pool's table
    (None: stale), ``pool_of`` finds the pool a stale job came from."""
    value = _hash_value(found)
    job = found.work.job
    bits = _submit_bits(found, None if entry is None else entry.job.version_mask)
    if value is None or bits is None or not 0 <= found.chip < chips:
        return Verdict(NonceClass.HW_ERROR)
    difficulty = DIFF1_TARGET / value if value else math.inf
    if window.seen_before(found):
        return Verdict(NonceClass.DUPLICATE, difficulty)
    if entry is None or source is None:
        pool = pool_of(job)
        target = difficulty_to_target(job.difficulty if pool is None else pool.difficulty_for(job))
        return Verdict(NonceClass.STALE, difficulty, bits, pool, value <= target)
    meets_pool = value <= difficulty_to_target(source.difficulty_for(job))
    if value <= nbits_to_target(job.nbits):
        return Verdict(NonceClass.BLOCK, difficulty, bits, source, meets_pool)
    if not meets_pool:
        return Verdict(NonceClass.BELOW_DIFFICULTY, difficulty, bits, source)
    return Verdict(NonceClass.SHARE, difficulty, bits, source)


def build_next(table: JobTable, midstates: int) -> tuple[Work | None, int]:
    """A fresh unit from the newest job of ``table`` that still gives work, and how many
    jobs were found used up on the way (each is counted once)."""
    exhausted = 0
    for entry in table.newest_first():
        if entry.exhausted:
            continue
        builder = _builder(entry)
        if builder is None:
            exhausted += 1
            continue
        job = entry.job
        units = midstates if job.version_mask else min(midstates, 1)
        return builder.build(entry.counter.take(), midstates=units), exhausted
    return None, exhausted


def _builder(entry: JobEntry) -> JobBuilder | None:
    """The entry's cached builder, or None (and the entry marked used up) if the job can
    give no more work."""
    why = "extranonce2 space used up" if entry.counter.remaining == 0 else ""
    if not why and entry.builder is None:
        try:
            entry.builder = JobBuilder(entry.job)
        except WorkError as exc:
            why = str(exc)
    if why:
        entry.exhausted = True
        _log.warning("job gives no more work", job_id=entry.job.job_id, reason=why)
        return None
    return entry.builder


def _hash_value(found: FoundNonce) -> int | None:
    """The hash as an integer, or None if it disagrees with the reported difficulty.

    The driver has already hashed the header, so re-hashing is not repeated here; this
    only catches a record whose fields do not belong together.
    """
    if len(found.hash) != 32:
        return None
    value = int.from_bytes(found.hash, "little")
    difficulty = DIFF1_TARGET / value if value else math.inf
    if not math.isclose(difficulty, found.difficulty, rel_tol=1e-9):
        return None
    return value


def _submit_bits(found: FoundNonce, mask: int | None = None) -> int | None:
    """The submit's version bits, or None when the version leaves the mask in force
    (``mask``, or the job's own when it is no longer live)."""
    job = found.work.job
    mask = job.version_mask if mask is None else mask
    try:
        return version_bits(job.version, found.version, mask, job.version_bits_form)
    except WorkError:
        return None
