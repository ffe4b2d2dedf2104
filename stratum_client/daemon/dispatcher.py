"""The dispatch core: pool jobs in, work units out; chip nonces in, shares out. No I/O.

The daemon shell feeds it :mod:`stratum_client.pool.types` events and chip nonces, with
the time passed in, and carries out the few :data:`Action` records it returns. Keeping
this pure lets the rules that decide whether a share is ever lost be tested exhaustively:

* **Every nonce gets exactly one class** (:class:`~stratum_client.daemon.stats.NonceClass`)
  and every found share ends accepted, rejected or lost with a reason, or is still pending
  or in flight: ``found == accepted + rejected + lost + pending + in_flight`` always holds
  (:attr:`DispatchSnapshot.balanced`).
* **Job state has one owner**, the pool's :class:`~stratum_client.protocol.jobs.JobTable`:
  the session changes it, the manager keeps it across reconnects, and the dispatcher
  builds work from its live jobs and asks it whether a nonce's job is still live.
* **Extranonce2 never repeats within a job.** The table keeps one counter per (job id,
  prevhash, extranonce2 size), shared by all chains and kept across a repeated notify, so
  a non-clean notify can never recreate work already hashed (ESP-Miner reset it).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from stratum_client.asic.base import FoundNonce
from stratum_client.daemon.dispatch_records import (
    Action,
    ChainSpec,
    DeviceSnapshot,
    DispatchSnapshot,
    FlushChains,
    PoolSnapshot,
    SetVersionMask,
    SubmitShare,
)
from stratum_client.daemon.share_queue import LOST_QUEUE_FULL, ShareQueue
from stratum_client.daemon.stats import NonceClass, ShareStats, WorkerStats
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
from stratum_client.protocol.jobs import (
    LOST_CLEAN_JOBS,
    LOST_EXTRANONCE_CHANGED,
    LOST_JOB_REPLACED,
    LOST_NOT_RESUMED,
    JobEntry,
    JobTable,
    Retired,
)
from stratum_client.protocol.messages import SubmitErrorCode
from stratum_client.work.builder import JobBuilder
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
LOST_STALE = "stale: job invalidated"

DEDUPE_WINDOW = 65536
"""Nonce keys remembered for duplicate detection (about 8 MiB when full)."""

_log = structlog.get_logger(__name__)

_NonceKey = tuple[str, bytes, bytes, int, int, int]
JobTables = Callable[[int], JobTable]
"""The job table of the pool at an index (the pool manager's)."""


@dataclass(slots=True, eq=False)
class _PoolWork:
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
    stats: ShareStats = field(default_factory=ShareStats)

    def difficulty_for(self, job: Job) -> float:
        """The difficulty in force now; the job's own only until the pool sets one."""
        return job.difficulty if self.difficulty is None else self.difficulty

    def work_void(self) -> bool:
        """The job the chains were fed is no longer live: their work can only be stale."""
        fed = self.feeding
        self.feeding = self.table.newest()
        return fed is not None and not isinstance(self.table.classify(fed), JobEntry)


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
    """For stale nonces: it would have been a share (so a share is lost)."""


_SHARE_CLASSES = frozenset({NonceClass.SHARE, NonceClass.BLOCK})


def _own_tables() -> JobTables:
    tables: dict[int, JobTable] = {}
    return lambda index: tables.setdefault(index, JobTable())


class Dispatcher:
    """Jobs → work units for every chain; nonces → classified, de-duplicated shares.

    Only the *active* pool (the last one reported up) feeds the chains. While its session
    is down, mining continues on its current jobs and shares wait in a bounded queue;
    they are submitted when the pool comes back with the same extranonce1.
    ``job_tables`` gives each pool's job table (without a pool manager: its own).
    """

    def __init__(
        self,
        chains: Sequence[ChainSpec],
        *,
        job_tables: JobTables | None = None,
        pending_limit: int = 1024,
        dedupe_window: int = DEDUPE_WINDOW,
    ) -> None:
        if pending_limit < 0 or dedupe_window < 1:
            raise ValueError("pending_limit ≥ 0 and dedupe_window ≥ 1")
        self._chains: dict[str, _Chain] = {}
        for spec in chains:
            if spec.name in self._chains:
                raise ValueError(f"duplicate chain name {spec.name!r}")
            chips = [WorkerStats() for _ in range(spec.chips)]
            self._chains[spec.name] = _Chain(spec, chips=chips)
        self._tables = _own_tables() if job_tables is None else job_tables
        self._dedupe_window = dedupe_window
        self._pools: dict[int, _PoolWork] = {}
        self._source: _PoolWork | None = None
        self._programmed_mask: int | None = None
        self._queue = ShareQueue(pending_limit, self._lose)
        self._seen: dict[_NonceKey, None] = {}
        self._total = WorkerStats()
        self._exhausted_jobs = 0
        self._untracked_outcomes = 0

    def job_table(self, pool: int) -> JobTable:
        """The job table the dispatcher asks about ``pool``'s jobs."""
        return self._pool(pool).table

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
        pool.table = self._tables(event.pool)
        pool.name = event.name
        previous, self._source = self._source, pool
        if not event.resumed and not pool.difficulty_since_down:
            pool.difficulty = None  # the old session's vardiff does not carry over
        pool.up = True
        void = pool.work_void()
        if previous is not None and previous is not pool:
            _log.info("pool switched", old=previous.name, new=pool.name)
        self._sweep_pending()
        actions: list[Action] = self._mask_action(pool)
        if void or previous is not pool:
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
                return self._on_jobs_changed(pool, new_job=True)
            case ev.DifficultyChanged():
                pool.difficulty = event.difficulty
                pool.difficulty_since_down = True
            case ev.VersionRollingNegotiated() | ev.VersionMaskChanged():
                return self._mask_action(pool)
            case ev.VersionRollingUnavailable():
                return self._mask_action(pool)
            case ev.ExtranonceChanged():
                return self._on_jobs_changed(pool, new_job=False)
        return []

    def _on_jobs_changed(self, pool: _PoolWork, *, new_job: bool) -> list[Action]:
        """The session changed the pool's jobs: flush work that went void, drop queued
        shares that can no longer be accepted, and send the rest once the session has
        a job to name them by."""
        actions: list[Action] = []
        if pool.work_void() and pool is self._source:
            actions.append(FlushChains())
        self._sweep_pending()
        if new_job:
            first, pool.session_job = not pool.session_job, True
            if first and pool.up and pool is self._source:
                actions.extend(self._submit_pending())
        return actions

    def _mask_action(self, pool: _PoolWork) -> list[Action]:
        mask = pool.table.version_mask
        if pool is not self._source or mask == self._programmed_mask:
            return []
        self._programmed_mask = mask
        return [SetVersionMask(mask)]

    def _pool(self, index: int) -> _PoolWork:
        pool = self._pools.get(index)
        if pool is None:
            pool = self._pools[index] = _PoolWork(index, self._tables(index), name=f"pool{index}")
        return pool

    def _live_entry(self, job: Job) -> JobEntry | None:
        source = self._source
        state = None if source is None else source.table.classify(job)
        return state if isinstance(state, JobEntry) else None

    def _pool_of(self, job: Job) -> _PoolWork | None:
        """The pool whose table knows ``job`` (live or retired), for a stale nonce."""
        return next((p for p in self._pools.values() if p.table.classify(job) is not None), None)

    # -- work -------------------------------------------------------------------------

    def next_work(self, chain: str, now: float) -> Work | None:
        """A fresh unit from the newest usable job of the active pool (None: no job yet)."""
        unit = self._chain(chain)
        unit.start(now)
        self._total.start(now)
        source = self._source
        if source is None:
            return None
        for entry in source.table.newest_first():
            builder = self._builder(entry)
            if builder is None:
                continue
            job = entry.job
            midstates = unit.spec.midstates if job.version_mask else min(unit.spec.midstates, 1)
            return builder.build(entry.counter.take(), midstates=midstates)
        return None

    def _builder(self, entry: JobEntry) -> JobBuilder | None:
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

    def _exhaust(self, entry: JobEntry, why: str) -> None:
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
        work, job = found.work, found.work.job
        entry = self._live_entry(job)
        bits = _submit_bits(found, None if entry is None else entry.job.version_mask)
        if value is None or bits is None or not 0 <= found.chip < unit.spec.chips:
            return _Verdict(NonceClass.HW_ERROR)
        difficulty = DIFF1_TARGET / value if value else math.inf
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
            pool = self._pool_of(job)
            target = difficulty_to_target(
                job.difficulty if pool is None else pool.difficulty_for(job)
            )
            return _Verdict(NonceClass.STALE, difficulty, bits, pool, value <= target)
        pool = self._source
        assert pool is not None
        if value <= nbits_to_target(job.nbits):
            return _Verdict(NonceClass.BLOCK, difficulty, bits, pool)
        if value > difficulty_to_target(pool.difficulty_for(job)):
            return _Verdict(NonceClass.BELOW_DIFFICULTY, difficulty, bits, pool)
        return _Verdict(NonceClass.SHARE, difficulty, bits, pool)

    def _seen_before(self, key: _NonceKey) -> bool:
        """An insertion-ordered dict is the window: oldest keys are forgotten first."""
        seen = self._seen
        if key in seen:
            return True
        seen[key] = None
        if len(seen) > self._dedupe_window:
            del seen[next(iter(seen))]
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
        if verdict.pool.up and verdict.pool.session_job:
            self._queue.send(share)
            return [SubmitShare(share)]
        self._queue.enqueue(share)
        return []

    # -- the share ledger -------------------------------------------------------------

    def _requeue(self, share: Share) -> None:
        """A share that did not reach the pool goes back to the queue (or is lost)."""
        if not self._queue.take_in_flight(share):
            self._untracked_outcomes += 1
            _log.warning("no share in flight to requeue", job_id=share.job.job_id)
            return
        reason = self._fate(share)
        if reason is not None:
            self._lose(share, reason)
        else:
            self._queue.enqueue(share)

    def _fate(self, share: Share) -> str | None:
        """Why a queued share can never be accepted now, or None if it still can."""
        source = self._source
        if source is None or share.pool != source.index:
            return LOST_POOL_SWITCHED
        state = source.table.classify(share.job)
        if isinstance(state, Retired):
            return state.reason
        job, table = share.job, source.table
        if state is None and (job.extranonce1, job.extranonce2_size) != (
            table.extranonce1,
            table.extranonce2_size,
        ):
            return LOST_NOT_RESUMED
        return None

    def _sweep_pending(self) -> None:
        for reason, count in self._queue.sweep(self._fate).items():
            _log.warning("queued shares lost", count=count, reason=reason)

    def _submit_pending(self) -> list[Action]:
        """Everything still queued belongs to the active pool's session: send it."""
        return [SubmitShare(share) for share in self._queue.send_all()]

    def _lose(self, share: Share, reason: str) -> None:
        for stats in self._share_ledgers(share):
            stats.record_lost(reason)

    def _on_outcome(self, outcome: ShareOutcome, now: float) -> None:
        share = outcome.share
        if not self._queue.take_in_flight(share) and not self._queue.take_pending(share):
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
            job_count=0 if source is None else len(source.table),
            found_shares=totals.found,
            accepted=totals.accepted,
            rejected=totals.rejected,
            lost=totals.lost,
            pending=self._queue.pending_count,
            in_flight=self._queue.in_flight_count,
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
        active = pool is self._source
        return PoolSnapshot(
            index=pool.index,
            name=pool.name,
            active=active,
            session_up=pool.up,
            difficulty=_current_difficulty(pool),
            version_mask=pool.table.version_mask,
            extranonce1=pool.table.extranonce1,
            jobs=len(pool.table) if active else 0,
            pending=sum(1 for share in self._queue.pending() if share.pool == pool.index),
            in_flight=self._queue.in_flight_for(pool.index),
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


def _current_difficulty(pool: _PoolWork) -> float | None:
    if pool.difficulty is not None:
        return pool.difficulty
    newest = pool.table.newest()
    return None if newest is None else newest.difficulty


def _device_snapshot(unit: _Chain, now: float) -> DeviceSnapshot:
    return DeviceSnapshot(
        name=unit.spec.name,
        ticket_difficulty=unit.spec.ticket_difficulty,
        total=unit.device.snapshot(now),
        chips=tuple(chip.snapshot(now) for chip in unit.chips),
    )
