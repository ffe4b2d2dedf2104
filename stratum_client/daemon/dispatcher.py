"""The dispatch core: pool jobs in, work units out; chip nonces in, shares out. No I/O.

The daemon shell feeds it :mod:`stratum_client.pool.types` events and chip nonces, with
the time passed in, and carries out the few :data:`Action` records it returns. Keeping
this pure lets the rules that decide whether a share is ever lost be tested exhaustively:

* **Every nonce gets exactly one class** (:class:`~stratum_client.daemon.stats.NonceClass`)
  and every found share ends accepted, rejected or lost with a reason, or is still pending
  or in flight: ``found == accepted + rejected + lost + pending + in_flight`` always holds
  (:attr:`DispatchSnapshot.balanced`).
* **Extranonce2 never repeats within a job.** One counter per (job id, prevhash,
  extranonce2 size) is shared by all chains and survives a repeated notify, so a non-clean
  notify can never recreate work already hashed (ESP-Miner reset it: duplicate shares).
* **Difficulty applies at check time.** Pools apply vardiff as soon as they send
  ``set_difficulty``; checking against the difficulty stamped on the job (ESP-Miner applies
  it at the next notify) sends shares the pool rejects as low difficulty.
* **Duplicates are dropped before submitting**, over a bounded window, because chips do
  re-emit nonces (BM1370 has been seen repeating one about 200 times).
* **A new extranonce1 invalidates work built with the old one.** After
  ``mining.set_extranonce`` the pool hashes every submit with the new value, so old work
  can only yield rejects: the chains are flushed and the newest job is rebuilt with the new
  extranonce1 under the same job id, rather than idling until the next notify.
* **A new version mask applies at once** (BIP310): held jobs take it, and nonces are
  checked against the mask in force, not the one stamped on the work they came from.
* **Nothing is submitted before the session has a job.** After a reconnect the pool
  sends its jobs only after authorize; queued shares wait for the first ``NewJob`` so the
  session can name their job, and a resumed pool's clean re-announcement of a job still
  held keeps it (and the shares found on it) valid.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import structlog

from stratum_client.asic.base import FoundNonce
from stratum_client.daemon.stats import (
    NonceClass,
    ShareCounts,
    ShareStats,
    WorkerSnapshot,
    WorkerStats,
)
from stratum_client.errors import WorkError
from stratum_client.pool.types import (
    ManagerEvent,
    PoolDown,
    PoolUp,
    SessionEvent,
    Share,
    ShareOutcome,
    ShareUnanswered,
)
from stratum_client.protocol import events as ev
from stratum_client.protocol.jobs import same_work
from stratum_client.protocol.messages import SubmitErrorCode
from stratum_client.work.builder import MIDSTATE_COUNTS, JobBuilder
from stratum_client.work.candidates import hold_back_reason
from stratum_client.work.extranonce import Extranonce2Counter
from stratum_client.work.job import Job, Work
from stratum_client.work.target import DIFF1_TARGET, difficulty_to_target, nbits_to_target
from stratum_client.work.versionroll import version_bits

__all__ = [
    "DEDUPE_WINDOW",
    "LOST_CLEAN_JOBS",
    "LOST_EXTRANONCE_CHANGED",
    "LOST_JOB_REPLACED",
    "LOST_NOT_RESUMED",
    "LOST_POOL_SWITCHED",
    "LOST_QUEUE_FULL",
    "LOST_STALE",
    "Action",
    "ChainSpec",
    "DeviceSnapshot",
    "DispatchSnapshot",
    "Dispatcher",
    "FlushChains",
    "PoolSnapshot",
    "SetVersionMask",
    "SubmitShare",
]

LOST_POOL_SWITCHED = "pool switched"
LOST_NOT_RESUMED = "session not resumed: extranonce1 changed"
LOST_EXTRANONCE_CHANGED = "extranonce1 changed by the pool (mining.set_extranonce)"
LOST_CLEAN_JOBS = "job invalidated by clean_jobs (new block)"
LOST_JOB_REPLACED = "job id reused by the pool for different work"
LOST_QUEUE_FULL = "pending queue full"
LOST_STALE = "stale: job invalidated"

_RETIRED_KEPT = 256
"""Invalidated jobs remembered, to attribute late nonces and refused shares to a pool."""
_COUNTERS_PER_JOB_SLOT = 8
"""Extranonce2 counters kept per pool, as a multiple of the job history."""

_log = structlog.get_logger(__name__)

_NonceKey = tuple[str, bytes, bytes, int, int, int]


# -- what the shell is told ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """One chain the dispatcher feeds.

    ``ticket_difficulty`` is the difficulty every nonce the chain reports meets (the
    driver's *effective* ticket, scale included): each nonce stands for that many times
    ``2**32`` hashes in the hashrate estimate.
    """

    name: str
    midstates: int
    """The driver's :attr:`~stratum_client.asic.base.AsicDriver.midstates`: 0, 1 or 4."""
    chips: int
    ticket_difficulty: float = 256.0

    def __post_init__(self) -> None:
        if self.midstates not in MIDSTATE_COUNTS:
            raise ValueError(f"chain {self.name!r}: midstates must be one of {MIDSTATE_COUNTS}")
        if self.chips < 1:
            raise ValueError(f"chain {self.name!r}: needs at least one chip")
        if not math.isfinite(self.ticket_difficulty) or self.ticket_difficulty <= 0:
            raise ValueError(f"chain {self.name!r}: ticket difficulty must be positive")


@dataclass(frozen=True, slots=True)
class SubmitShare:
    """Hand ``share`` to ``PoolManager.submit``; if it returns False call
    :meth:`Dispatcher.submit_refused`."""

    share: Share


@dataclass(frozen=True, slots=True)
class FlushChains:
    """Call ``flush_work`` on every chain and send fresh work at once."""


@dataclass(frozen=True, slots=True)
class SetVersionMask:
    """Program ``mask`` into every chain (full-header chips roll on-chip)."""

    mask: int


Action = SubmitShare | FlushChains | SetVersionMask


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One pool as the dispatcher sees it."""

    index: int
    name: str
    active: bool
    """This pool's jobs feed the chains."""
    session_up: bool
    difficulty: float | None
    """Share difficulty in force now (None before the first job)."""
    version_mask: int
    extranonce1: bytes | None
    jobs: int
    pending: int
    in_flight: int
    shares: ShareCounts


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One chain: totals and one entry per chip, in chain order."""

    name: str
    ticket_difficulty: float
    total: WorkerSnapshot
    chips: tuple[WorkerSnapshot, ...]


@dataclass(frozen=True, slots=True)
class DispatchSnapshot:
    """Everything the status line, the demo summary and the APIs read, at ``at``."""

    at: float
    active_pool: int | None
    session_up: bool
    current_difficulty: float | None
    version_mask: int | None
    """The mask last programmed into the chains (None: never set)."""
    job_count: int
    found_shares: int
    accepted: int
    rejected: int
    lost: int
    pending: int
    in_flight: int
    lost_by_reason: Mapping[str, int]
    blocks_found: int
    best_share: float
    exhausted_jobs: int
    """Jobs whose extranonce2 space ran out (they gave no more work)."""
    untracked_outcomes: int
    """Outcomes for shares this dispatcher did not have in flight (a manager bug)."""
    total: WorkerSnapshot
    pools: tuple[PoolSnapshot, ...]
    devices: tuple[DeviceSnapshot, ...]

    @property
    def balanced(self) -> bool:
        """The share ledger adds up: no found share vanished unaccounted."""
        ends = self.accepted + self.rejected + self.lost + self.pending + self.in_flight
        return self.found_shares == ends


# -- internal state -----------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _JobEntry:
    pool: int
    job: Job
    counter: Extranonce2Counter
    builder: JobBuilder | None = None
    exhausted: bool = False
    former: list[Job] = field(default_factory=list)
    """Earlier copies of ``job`` (before a mask change) still referenced by work in flight."""


@dataclass(slots=True, eq=False)
class _Retired:
    job: Job
    """Held so that ``id(job)`` cannot be reused while the record exists."""
    pool: int
    reason: str | None
    """Why shares for it are lost; None when it merely aged out of the history."""


@dataclass(slots=True, eq=False)
class _PoolWork:
    """The dispatcher's view of one pool: work in force, difficulty and share counters."""

    index: int
    name: str = ""
    up: bool = False
    session_job: bool = False
    """The current session has sent a job. Until it has, shares wait: the session could
    not name their job, and would refuse them as unknown."""
    extranonce1: bytes | None = None
    extranonce2_size: int = 0
    extranonce_reason: str = LOST_NOT_RESUMED
    difficulty: float | None = None
    difficulty_since_down: bool = False
    version_mask: int = 0
    submit_below: bool = True
    """Its ``submit_block_candidates_below_difficulty`` (from ``PoolUp``)."""
    jobs: OrderedDict[str, _JobEntry] = field(default_factory=OrderedDict)
    counters: OrderedDict[tuple[str, bytes, int], Extranonce2Counter] = field(
        default_factory=OrderedDict
    )
    stats: ShareStats = field(default_factory=ShareStats)

    def difficulty_for(self, job: Job) -> float:
        """The difficulty in force now; the job's own only until the pool sets one."""
        return job.difficulty if self.difficulty is None else self.difficulty


@dataclass(slots=True, eq=False)
class _Chain:
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


@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: NonceClass
    difficulty: float = 0.0
    bits: int = 0
    pool: _PoolWork | None = None
    meets_pool: bool = False
    """It meets the pool's share target (stale nonces: so a share is lost)."""


_SHARE_CLASSES = frozenset({NonceClass.SHARE, NonceClass.BLOCK})


DEDUPE_WINDOW = 65536
"""Nonce keys remembered for duplicate detection (about 8 MiB when full)."""


class Dispatcher:
    """Jobs → work units for every chain; nonces → classified, de-duplicated shares.

    Only the *active* pool (the last one reported up) feeds the chains. While its session
    is down, mining continues on its current jobs and shares wait in a bounded queue;
    they are submitted when the pool comes back with the same extranonce1.
    """

    def __init__(
        self,
        chains: Sequence[ChainSpec],
        *,
        pending_limit: int = 1024,
        dedupe_window: int = DEDUPE_WINDOW,
        job_history: int = 8,
    ) -> None:
        if pending_limit < 0 or dedupe_window < 1 or job_history < 1:
            raise ValueError("pending_limit ≥ 0, dedupe_window ≥ 1 and job_history ≥ 1")
        self._chains: dict[str, _Chain] = {}
        for spec in chains:
            if spec.name in self._chains:
                raise ValueError(f"duplicate chain name {spec.name!r}")
            chips = [WorkerStats() for _ in range(spec.chips)]
            self._chains[spec.name] = _Chain(spec, chips=chips)
        self._pending_limit = pending_limit
        self._dedupe_window = dedupe_window
        self._job_history = job_history
        self._pools: dict[int, _PoolWork] = {}
        self._source: _PoolWork | None = None
        self._programmed_mask: int | None = None
        self._retired: OrderedDict[int, _Retired] = OrderedDict()
        self._pending: OrderedDict[int, Share] = OrderedDict()
        self._serial = 0
        self._in_flight: dict[Share, int] = {}
        self._in_flight_count = 0
        self._seen: set[_NonceKey] = set()
        self._seen_order: deque[_NonceKey] = deque()
        self._total = WorkerStats()
        self._exhausted_jobs = 0
        self._untracked_outcomes = 0

    # -- pool side --------------------------------------------------------------------

    def on_manager_event(self, event: ManagerEvent, now: float) -> list[Action]:
        """Apply one pool-manager event; returns what the shell must do, in order."""
        match event:
            case PoolUp():
                return self._on_pool_up(event)
            case PoolDown():
                self._on_pool_down(event)
            case SessionEvent():
                return self._on_session_event(self._pool(event.pool), event.event)
            case ShareOutcome():
                self._on_outcome(event, now)
            case ShareUnanswered():
                self._requeue(event.share)
        return []

    def submit_refused(self, share: Share, now: float) -> None:
        """``PoolManager.submit`` returned False (no session): keep the share pending.

        ``now`` is accepted for symmetry with the other entry points; nothing here is timed.
        """
        self._requeue(share)

    def _on_pool_up(self, event: PoolUp) -> list[Action]:
        pool = self._pool(event.pool)
        pool.name = event.name
        previous, self._source = self._source, pool
        if not event.resumed and not pool.difficulty_since_down:
            pool.difficulty = None  # the old session's vardiff does not carry over
        pool.up = True
        pool.submit_below = event.submit_block_candidates_below_difficulty
        changed = self._adopt_extranonce(
            pool, event.extranonce1, event.extranonce2_size, LOST_NOT_RESUMED
        )
        if previous is not None and previous is not pool:
            _log.info("pool switched", old=previous.name, new=pool.name)
            self._retire(previous, list(previous.jobs.values()), LOST_POOL_SWITCHED)
        self._sweep_pending()
        actions: list[Action] = self._mask_action(pool)
        if changed or previous is not pool:
            actions.append(FlushChains())
        if pool.session_job:  # the pool sent a job before the authorize reply
            actions.extend(self._submit_pending())
        return actions

    def _on_pool_down(self, event: PoolDown) -> None:
        pool = self._pool(event.pool)
        pool.up = False
        pool.session_job = False
        pool.difficulty_since_down = False
        if pool is self._source:
            _log.info("pool down; queueing shares", pool=pool.name, reason=event.reason)

    def _on_session_event(self, pool: _PoolWork, event: ev.Event) -> list[Action]:
        match event:
            case ev.NewJob():
                return self._on_new_job(pool, event)
            case ev.DifficultyChanged():
                pool.difficulty = event.difficulty
                pool.difficulty_since_down = True
            case ev.VersionRollingNegotiated() | ev.VersionMaskChanged():
                return self._on_mask(pool, event.mask)
            case ev.VersionRollingUnavailable():
                return self._on_mask(pool, 0)
            case ev.ExtranonceChanged():
                return self._on_extranonce(pool, event)
        return []

    def _on_new_job(self, pool: _PoolWork, event: ev.NewJob) -> list[Action]:
        job = event.job
        reason = LOST_EXTRANONCE_CHANGED if pool.up else LOST_NOT_RESUMED
        changed = self._adopt_extranonce(pool, job.extranonce1, job.extranonce2_size, reason)
        newest = next(reversed(pool.jobs.values()), None)
        if event.clean:
            # A resumed pool re-announces its current job as clean: that job stays valid
            # (and so do the shares found on it); everything else is gone.
            older = [e for e in pool.jobs.values() if not same_work(e.job, job)]
            self._retire(pool, older, LOST_CLEAN_JOBS)
        self._add_job(pool, job)
        self._sweep_pending()
        actions: list[Action] = []
        kept = newest is not None and pool.jobs.get(newest.job.job_id) is newest
        if pool is self._source and (changed or not kept):
            actions.append(FlushChains())
        first, pool.session_job = not pool.session_job, True
        if first and pool.up and pool is self._source:
            actions.extend(self._submit_pending())
        return actions

    def _on_mask(self, pool: _PoolWork, mask: int) -> list[Action]:
        """The pool's mask changed: it applies to held jobs at once (BIP310)."""
        pool.version_mask = mask
        for entry in pool.jobs.values():
            if entry.job.version_mask != mask:
                entry.former.append(entry.job)
                entry.job = replace(entry.job, version_mask=mask)
                entry.builder = None
        return self._mask_action(pool)

    def _on_extranonce(self, pool: _PoolWork, event: ev.ExtranonceChanged) -> list[Action]:
        newest = next(reversed(pool.jobs.values()), None)
        en1, size = event.extranonce1, event.extranonce2_size
        if not self._adopt_extranonce(pool, en1, size, LOST_EXTRANONCE_CHANGED):
            return []
        if newest is not None:
            self._add_job(pool, replace(newest.job, extranonce1=en1, extranonce2_size=size))
        self._sweep_pending()
        return [FlushChains()] if pool is self._source else []

    def _mask_action(self, pool: _PoolWork) -> list[Action]:
        if pool is not self._source or pool.version_mask == self._programmed_mask:
            return []
        self._programmed_mask = pool.version_mask
        return [SetVersionMask(pool.version_mask)]

    def _pool(self, index: int) -> _PoolWork:
        pool = self._pools.get(index)
        if pool is None:
            pool = self._pools[index] = _PoolWork(index, name=f"pool{index}")
        return pool

    # -- the job table ----------------------------------------------------------------

    def _adopt_extranonce(self, pool: _PoolWork, en1: bytes, size: int, reason: str) -> bool:
        """Make ``en1`` the pool's; jobs built on another one are retired. True if any."""
        if pool.extranonce1 == en1 and pool.extranonce2_size == size:
            return False
        pool.extranonce1, pool.extranonce2_size = en1, size
        pool.extranonce_reason = reason
        other = [e for e in pool.jobs.values() if not _same_extranonce(e.job, en1, size)]
        self._retire(pool, other, reason)
        return bool(other)

    def _add_job(self, pool: _PoolWork, job: Job) -> None:
        current = pool.jobs.get(job.job_id)
        if current is not None:
            if same_work(current.job, job):
                pool.jobs.move_to_end(job.job_id)  # a repeat: same work, same counter
                return
            self._retire(pool, [current], LOST_JOB_REPLACED)
        pool.jobs[job.job_id] = _JobEntry(pool.index, job, self._counter(pool, job))
        while len(pool.jobs) > self._job_history:
            oldest = next(iter(pool.jobs.values()))
            self._retire(pool, [oldest], None)

    def _counter(self, pool: _PoolWork, job: Job) -> Extranonce2Counter:
        """The job id's counter: shared across repeats so no extranonce2 is reused."""
        key = (job.job_id, job.prevhash, job.extranonce2_size)
        counter = pool.counters.get(key)
        if counter is None:
            counter = pool.counters[key] = Extranonce2Counter(job.extranonce2_size)
            while len(pool.counters) > self._job_history * _COUNTERS_PER_JOB_SLOT:
                pool.counters.popitem(last=False)
        else:
            pool.counters.move_to_end(key)
        return counter

    def _retire(self, pool: _PoolWork, entries: list[_JobEntry], reason: str | None) -> None:
        for entry in entries:
            if pool.jobs.get(entry.job.job_id) is entry:
                del pool.jobs[entry.job.job_id]
            for job in (*entry.former, entry.job):
                self._retired[id(job)] = _Retired(job, pool.index, reason)
                self._retired.move_to_end(id(job))
        while len(self._retired) > _RETIRED_KEPT:
            self._retired.popitem(last=False)
        # Not for every new block: even a filtered-out structlog call costs tens of µs
        # on the notify → job path of an idle daemon, and clean jobs are routine.
        if entries and reason is not None and reason != LOST_CLEAN_JOBS:
            _log.debug("jobs retired", pool=pool.name, count=len(entries), reason=reason)

    def _live_entry(self, job: Job) -> _JobEntry | None:
        source = self._source
        entry = None if source is None else source.jobs.get(job.job_id)
        if entry is None or (entry.job is not job and not same_work(entry.job, job)):
            return None
        return entry

    def _retired_pool(self, job: Job) -> _PoolWork | None:
        record = self._retired.get(id(job))
        if record is None or record.job is not job:
            return None
        return self._pools.get(record.pool)

    # -- work -------------------------------------------------------------------------

    def next_work(self, chain: str, now: float) -> Work | None:
        """A fresh unit from the newest usable job of the active pool (None: no job yet)."""
        unit = self._chain(chain)
        unit.start(now)
        self._total.start(now)
        source = self._source
        if source is None:
            return None
        for entry in reversed(source.jobs.values()):
            builder = self._builder(entry)
            if builder is None:
                continue
            job = entry.job
            midstates = unit.spec.midstates if job.version_mask else min(unit.spec.midstates, 1)
            return builder.build(entry.counter.take(), midstates=midstates)
        return None

    def _builder(self, entry: _JobEntry) -> JobBuilder | None:
        """The entry's cached builder, or None if the job can give no more work."""
        if entry.exhausted:
            return None
        if entry.counter.remaining == 0:
            self._exhaust(entry, "extranonce2 space used up")
            return None
        if entry.builder is None:
            try:
                entry.builder = JobBuilder(entry.job)
            except WorkError as exc:
                self._exhaust(entry, str(exc))
                return None
        return entry.builder

    def _exhaust(self, entry: _JobEntry, why: str) -> None:
        entry.exhausted = True
        self._exhausted_jobs += 1
        _log.warning("job gives no more work", job_id=entry.job.job_id, reason=why)

    def _chain(self, name: str) -> _Chain:
        unit = self._chains.get(name)
        if unit is None:
            raise ValueError(f"unknown chain {name!r}")
        return unit

    # -- nonces -----------------------------------------------------------------------

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> list[Action]:
        """Classify one nonce, count it, and submit (or queue) it if it is a share."""
        unit = self._chain(chain)
        verdict = self._judge(unit, found)
        self._count(unit, found.chip, verdict, now)
        if verdict.kind in _SHARE_CLASSES:
            return self._share_found(unit, found, verdict, now)
        if verdict.kind is NonceClass.STALE and verdict.meets_pool:
            index = None if verdict.pool is None else verdict.pool.index
            for stats in self._ledgers(index, unit.spec.name, found.chip):
                stats.record_found(verdict.difficulty)
                stats.record_lost(LOST_STALE)
        return []

    def _judge(self, unit: _Chain, found: FoundNonce) -> _Verdict:
        value = _hash_value(found)
        entry = self._live_entry(found.work.job)
        bits = _submit_bits(found, None if entry is None else entry.job.version_mask)
        if value is None or bits is None or not 0 <= found.chip < unit.spec.chips:
            return _Verdict(NonceClass.HW_ERROR)
        difficulty = DIFF1_TARGET / value if value else math.inf
        work, job = found.work, found.work.job
        key = (
            job.job_id,
            job.extranonce1,
            work.extranonce2,
            work.ntime,
            found.nonce,
            found.version,
        )
        if self._seen_before(key):
            return _Verdict(NonceClass.DUPLICATE, difficulty)
        if entry is None:
            pool = self._retired_pool(job)
            target = difficulty_to_target(
                job.difficulty if pool is None else pool.difficulty_for(job)
            )
            return _Verdict(NonceClass.STALE, difficulty, bits, pool, value <= target)
        pool = self._pools[entry.pool]
        meets_pool = value <= difficulty_to_target(pool.difficulty_for(job))
        if value <= nbits_to_target(job.nbits):
            return _Verdict(NonceClass.BLOCK, difficulty, bits, pool, meets_pool)
        if not meets_pool:
            return _Verdict(NonceClass.BELOW_DIFFICULTY, difficulty, bits, pool)
        return _Verdict(NonceClass.SHARE, difficulty, bits, pool)

    def _seen_before(self, key: _NonceKey) -> bool:
        if key in self._seen:
            return True
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self._dedupe_window:
            self._seen.discard(self._seen_order.popleft())
        return False

    def _count(self, unit: _Chain, chip: int, verdict: _Verdict, now: float) -> None:
        ticket = unit.spec.ticket_difficulty
        self._total.record_nonce(verdict.kind, verdict.difficulty, ticket, now)
        for worker in unit.workers(chip):
            worker.record_nonce(verdict.kind, verdict.difficulty, ticket, now)

    def _share_found(
        self, unit: _Chain, found: FoundNonce, verdict: _Verdict, now: float
    ) -> list[Action]:
        assert verdict.pool is not None
        block = verdict.kind is NonceClass.BLOCK
        share = Share(
            pool=verdict.pool.index,
            job=found.work.job,
            extranonce2=found.work.extranonce2,
            ntime=found.work.ntime,
            nonce=found.nonce,
            version_bits=verdict.bits,
            difficulty=verdict.difficulty,
            block=block,
            device=unit.spec.name,
            chip=found.chip,
            found_at=now,
        )
        for stats in self._share_ledgers(share):
            stats.record_found(share.difficulty, block=block)
        if block:
            _log.warning("block candidate found", job_id=share.job.job_id, device=share.device)
        held = hold_back_reason(
            block=block, meets_pool=verdict.meets_pool, submit_below=verdict.pool.submit_below
        )
        if held is not None:
            _log.warning("block candidate held back", reason=held, difficulty=share.difficulty)
            self._lose(share, held)
            return []
        if verdict.pool.up and verdict.pool.session_job:
            self._send(share)
            return [SubmitShare(share)]
        self._enqueue(share)
        return []

    # -- the share ledger -------------------------------------------------------------

    def _send(self, share: Share) -> None:
        self._in_flight[share] = self._in_flight.get(share, 0) + 1
        self._in_flight_count += 1

    def _take_in_flight(self, share: Share) -> bool:
        count = self._in_flight.get(share, 0)
        if not count:
            return False
        if count == 1:
            del self._in_flight[share]
        else:
            self._in_flight[share] = count - 1
        self._in_flight_count -= 1
        return True

    def _take_pending(self, share: Share) -> bool:
        for serial, queued in self._pending.items():
            if queued == share:
                del self._pending[serial]
                return True
        return False

    def _requeue(self, share: Share) -> None:
        """A share that did not reach the pool goes back to the queue (or is lost)."""
        if not self._take_in_flight(share):
            self._untracked_outcomes += 1
            _log.warning("no share in flight to requeue", job_id=share.job.job_id)
            return
        reason = self._fate(share)
        if reason is not None:
            self._lose(share, reason)
        else:
            self._enqueue(share)

    def _enqueue(self, share: Share) -> None:
        self._serial += 1
        self._pending[self._serial] = share
        while len(self._pending) > self._pending_limit:
            _, oldest = self._pending.popitem(last=False)
            self._lose(oldest, LOST_QUEUE_FULL)

    def _fate(self, share: Share) -> str | None:
        """Why a queued share can never be accepted now, or None if it still can."""
        source = self._source
        if source is None or share.pool != source.index:
            return LOST_POOL_SWITCHED
        record = self._retired.get(id(share.job))
        if record is not None and record.job is share.job and record.reason is not None:
            return record.reason
        if not _same_extranonce(share.job, source.extranonce1, source.extranonce2_size):
            return source.extranonce_reason
        return None

    def _sweep_pending(self) -> None:
        lost: Counter[str] = Counter()
        for serial, share in list(self._pending.items()):
            reason = self._fate(share)
            if reason is not None:
                del self._pending[serial]
                self._lose(share, reason)
                lost[reason] += 1
        for reason, count in lost.items():
            _log.warning("queued shares lost", count=count, reason=reason)

    def _submit_pending(self) -> list[Action]:
        """Everything still queued belongs to the active pool's session: send it."""
        shares = list(self._pending.values())
        self._pending.clear()
        for share in shares:
            self._send(share)
        return [SubmitShare(share) for share in shares]

    def _lose(self, share: Share, reason: str) -> None:
        for stats in self._share_ledgers(share):
            stats.record_lost(reason)

    def _on_outcome(self, outcome: ShareOutcome, now: float) -> None:
        share = outcome.share
        if not self._take_in_flight(share) and not self._take_pending(share):
            self._untracked_outcomes += 1
            _log.warning("outcome for an unknown share", job_id=share.job.job_id)
            return
        if outcome.accepted:
            for stats in self._share_ledgers(share):
                stats.record_accepted(share.difficulty, now)
            return
        kind = SubmitErrorCode.classify(outcome.code, outcome.reason)
        reason = kind.name.lower().replace("_", " ")
        stale = kind is SubmitErrorCode.JOB_NOT_FOUND
        _log.info("share rejected", reason=outcome.reason, code=outcome.code, kind=reason)
        for stats in self._share_ledgers(share):
            stats.record_rejected(share.difficulty, reason, stale=stale)

    def _share_ledgers(self, share: Share) -> list[ShareStats]:
        return self._ledgers(share.pool, share.device, share.chip)

    def _ledgers(self, pool: int | None, device: str, chip: int) -> list[ShareStats]:
        """Every counter set one share event goes into: total, pool, device and chip."""
        ledgers = [self._total.shares]
        if pool is not None:
            ledgers.append(self._pool(pool).stats)
        unit = self._chains.get(device)
        if unit is not None:
            ledgers.extend(worker.shares for worker in unit.workers(chip))
        return ledgers

    # -- reading ----------------------------------------------------------------------

    @property
    def active_pool(self) -> int | None:
        return None if self._source is None else self._source.index

    def snapshot(self, now: float) -> DispatchSnapshot:
        """Frozen figures for the status line and the APIs (costs O(pools + chips))."""
        source = self._source
        totals = self._total.shares
        return DispatchSnapshot(
            at=now,
            active_pool=self.active_pool,
            session_up=source is not None and source.up,
            current_difficulty=None if source is None else _current_difficulty(source),
            version_mask=self._programmed_mask,
            job_count=0 if source is None else len(source.jobs),
            found_shares=totals.found,
            accepted=totals.accepted,
            rejected=totals.rejected,
            lost=totals.lost,
            pending=len(self._pending),
            in_flight=self._in_flight_count,
            lost_by_reason=MappingProxyType(dict(totals.lost_by_reason)),
            blocks_found=totals.blocks_found,
            best_share=totals.best_share,
            exhausted_jobs=self._exhausted_jobs,
            untracked_outcomes=self._untracked_outcomes,
            total=self._total.snapshot(now),
            pools=tuple(self._pool_snapshot(p) for _, p in sorted(self._pools.items())),
            devices=tuple(_device_snapshot(unit, now) for unit in self._chains.values()),
        )

    def _pool_snapshot(self, pool: _PoolWork) -> PoolSnapshot:
        index = pool.index
        return PoolSnapshot(
            index=pool.index,
            name=pool.name,
            active=pool is self._source,
            session_up=pool.up,
            difficulty=_current_difficulty(pool),
            version_mask=pool.version_mask,
            extranonce1=pool.extranonce1,
            jobs=len(pool.jobs),
            pending=sum(1 for share in self._pending.values() if share.pool == index),
            in_flight=sum(n for share, n in self._in_flight.items() if share.pool == index),
            shares=pool.stats.snapshot(),
        )


# -- helpers ------------------------------------------------------------------------


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


def _same_extranonce(job: Job, en1: bytes | None, size: int) -> bool:
    return job.extranonce1 == en1 and job.extranonce2_size == size


def _current_difficulty(pool: _PoolWork) -> float | None:
    if pool.difficulty is not None:
        return pool.difficulty
    newest = next(reversed(pool.jobs.values()), None)
    return None if newest is None else newest.job.difficulty


def _device_snapshot(unit: _Chain, now: float) -> DeviceSnapshot:
    return DeviceSnapshot(
        name=unit.spec.name,
        ticket_difficulty=unit.spec.ticket_difficulty,
        total=unit.device.snapshot(now),
        chips=tuple(chip.snapshot(now) for chip in unit.chips),
    )
