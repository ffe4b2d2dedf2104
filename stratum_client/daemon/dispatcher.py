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
  can only yield rejects: the chains are flushed and the held jobs take the new value
  under the same job ids, rather than idling until the next notify.
* **A new version mask applies at once** (BIP310): held jobs take it, and nonces are
  checked against the mask in force, not the one stamped on the work they came from.
* **Nothing is submitted before the session has a job.** After a reconnect the pool
  sends its jobs only after authorize; queued shares wait for the first ``NewJob`` so the
  session can name their job, and a resumed pool's clean re-announcement of a job still
  held keeps it (and the shares found on it) valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

import structlog

from stratum_client.asic.records import FoundNonce
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
from stratum_client.daemon.dispatch_state import (
    DEDUPE_WINDOW,
    Chain,
    DedupeWindow,
    PoolWork,
    Verdict,
    build_next,
    judge,
)
from stratum_client.daemon.share_queue import LOST_QUEUE_FULL, ShareQueue
from stratum_client.daemon.stats import NonceClass, ShareStats, WorkerStats
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
from stratum_client.work.candidates import hold_back_reason
from stratum_client.work.job import Job, Work

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

_log = structlog.get_logger(__name__)
_SHARE_CLASSES = frozenset({NonceClass.SHARE, NonceClass.BLOCK})

JobTables = Callable[[int], JobTable]
"""The job table of the pool at an index (the pool manager's)."""


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
        self._chains: dict[str, Chain] = {}
        for spec in chains:
            if spec.name in self._chains:
                raise ValueError(f"duplicate chain name {spec.name!r}")
            chips = [WorkerStats() for _ in range(spec.chips)]
            self._chains[spec.name] = Chain(spec, chips=chips)
        own: dict[int, JobTable] = {}
        self._tables = job_tables or (lambda index: own.setdefault(index, JobTable()))
        self._window = DedupeWindow(dedupe_window)
        self._pools: dict[int, PoolWork] = {}
        self._source: PoolWork | None = None
        self._programmed_mask: int | None = None
        self._queue = ShareQueue(pending_limit, self._share_ledgers)
        self._total = WorkerStats()
        self._exhausted_jobs = 0

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
                self._queue.outcome(event, now)
            case ShareUnanswered():
                self._queue.requeue(event.share, self._fate)
        return []

    def submit_refused(self, share: Share, now: float) -> None:
        """``PoolManager.submit`` returned False (no session): keep the share pending."""
        self._queue.requeue(share, self._fate)

    def _on_pool_up(self, event: PoolUp) -> list[Action]:
        pool = self._pool(event.pool)
        pool.table = self._tables(event.pool)
        pool.name = event.name
        previous, self._source = self._source, pool
        if not event.resumed and not pool.difficulty_since_down:
            pool.difficulty = None  # the old session's vardiff does not carry over
        pool.up = True
        pool.submit_below = event.submit_block_candidates_below_difficulty
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

    def _on_session_event(self, pool: PoolWork, event: ev.Event) -> list[Action]:
        match event:
            case ev.NewJob():
                return self._on_jobs_changed(pool, new_job=True)
            case ev.DifficultyChanged():
                pool.difficulty = event.difficulty
                pool.difficulty_since_down = True
            case (
                ev.VersionRollingNegotiated()
                | ev.VersionMaskChanged()
                | ev.VersionRollingUnavailable()
            ):
                return self._mask_action(pool)
            case ev.ExtranonceChanged():
                return self._on_jobs_changed(pool, new_job=False)
        return []

    def _on_jobs_changed(self, pool: PoolWork, *, new_job: bool) -> list[Action]:
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

    def _mask_action(self, pool: PoolWork) -> list[Action]:
        mask = pool.table.version_mask
        if pool is not self._source or mask == self._programmed_mask:
            return []
        self._programmed_mask = mask
        return [SetVersionMask(mask)]

    def _pool(self, index: int) -> PoolWork:
        pool = self._pools.get(index)
        if pool is None:
            pool = self._pools[index] = PoolWork(index, self._tables(index), name=f"pool{index}")
        return pool

    def _pool_of(self, job: Job) -> PoolWork | None:
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
        work, exhausted = build_next(source.table, unit.spec.midstates)
        self._exhausted_jobs += exhausted
        return work

    def _chain(self, name: str) -> Chain:
        unit = self._chains.get(name)
        if unit is None:
            raise ValueError(f"unknown chain {name!r}")
        return unit

    # -- nonces -----------------------------------------------------------------------

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> list[Action]:
        """Classify one nonce, count it, and submit (or queue) it if it is a share."""
        unit = self._chain(chain)
        source = self._source
        state = None if source is None else source.table.classify(found.work.job)
        entry = state if isinstance(state, JobEntry) else None
        verdict = judge(
            found,
            unit.spec.chips,
            entry=entry,
            source=source,
            pool_of=self._pool_of,
            window=self._window,
        )
        ticket = unit.spec.ticket_difficulty
        self._total.record_nonce(verdict.kind, verdict.difficulty, ticket, now)
        if verdict.pool is not None:  # hw errors and duplicates have none: not new work
            verdict.pool.stats.record_work(ticket)
        for worker in unit.workers(found.chip):
            worker.record_nonce(verdict.kind, verdict.difficulty, ticket, now)
        if verdict.kind in _SHARE_CLASSES:
            return self._share_found(unit, found, verdict, now)
        if verdict.kind is NonceClass.STALE and verdict.meets_pool:
            index = None if verdict.pool is None else verdict.pool.index
            for stats in self._ledgers(index, unit.spec.name, found.chip):
                stats.record_found(verdict.difficulty)
                stats.record_lost(LOST_STALE)
        return []

    def _share_found(
        self, unit: Chain, found: FoundNonce, verdict: Verdict, now: float
    ) -> list[Action]:
        pool = verdict.pool
        assert pool is not None
        share = Share(
            pool=pool.index,
            job=found.work.job,
            extranonce2=found.work.extranonce2,
            ntime=found.work.ntime,
            nonce=found.nonce,
            version_bits=verdict.bits,
            difficulty=verdict.difficulty,
            block=verdict.kind is NonceClass.BLOCK,
            device=unit.spec.name,
            chip=found.chip,
            found_at=now,
        )
        if share.block:
            _log.warning("block candidate found", job_id=share.job.job_id, device=share.device)
        held = hold_back_reason(
            block=share.block, meets_pool=verdict.meets_pool, submit_below=pool.submit_below
        )
        if held is not None:
            _log.warning("block candidate held back", reason=held, difficulty=share.difficulty)
            self._queue.held_back(share, held)
            return []
        send = pool.up and pool.session_job
        self._queue.found(share, send=send)
        return [SubmitShare(share)] if send else []

    # -- the share ledger -------------------------------------------------------------

    def _fate(self, share: Share) -> str | None:
        """Why a queued share can never be accepted now, or None if it still can."""
        source = self._source
        if source is None or share.pool != source.index:
            return LOST_POOL_SWITCHED
        table = source.table
        state = table.classify(share.job)
        if isinstance(state, Retired):
            return state.reason
        job = share.job
        en1 = (table.extranonce1, table.extranonce2_size)
        if state is None and (job.extranonce1, job.extranonce2_size) != en1:
            return LOST_NOT_RESUMED
        return None

    def _sweep_pending(self) -> None:
        for reason, count in self._queue.sweep(self._fate).items():
            _log.warning("queued shares lost", count=count, reason=reason)

    def _submit_pending(self) -> list[Action]:
        """Everything still queued belongs to the active pool's session: send it."""
        return [SubmitShare(share) for share in self._queue.send_all()]

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
            current_difficulty=None if source is None else source.current_difficulty(),
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
            untracked_outcomes=self._queue.untracked,
            total=self._total.snapshot(now),
            pools=tuple(self._pool_snapshot(p) for _, p in sorted(self._pools.items())),
            devices=tuple(unit.snapshot(now) for unit in self._chains.values()),
        )

    def _pool_snapshot(self, pool: PoolWork) -> PoolSnapshot:
        pending = sum(1 for share in self._queue.pending() if share.pool == pool.index)
        in_flight = self._queue.in_flight_for(pool.index)
        return pool.snapshot(active=pool is self._source, pending=pending, in_flight=in_flight)
