"""The pool manager: keeps one working Stratum session on the best available pool.

It owns connections and sessions and nothing else. :meth:`PoolManager.run` is the
supervisor: it connects to the pool :class:`~stratum_client.pool.failover.FailoverPolicy`
chooses, drives a fresh :class:`~stratum_client.protocol.PoolSession` over it, and turns
what the session reports into the records of :mod:`stratum_client.pool.types`, handed to
the sink (the dispatcher). Pool trouble of any kind is logged and answered by
reconnecting or failing over; it never escapes ``run()``.

The promise to the dispatcher: every share given to :meth:`PoolManager.submit` that
returns True ends as exactly one :class:`ShareOutcome` or :class:`ShareUnanswered`.
A False return means the share was not taken and stays the caller's.

The sink is called synchronously from the event loop and may call :meth:`submit` from
inside the callback (the dispatcher resubmits queued shares on :class:`PoolUp`); the
manager updates its own state before every call so that is safe. The one verdict that
``submit()`` itself produces (a share refused locally) is delivered on the next loop
iteration instead, so the sink is never re-entered from within ``submit()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from stratum_client.config import PoolConfig, PoolPolicy
from stratum_client.errors import InputError, WorkError
from stratum_client.pool.connection import (
    PoolConnection,
    PoolConnectionError,
    open_pool_connection,
)
from stratum_client.pool.failover import Ending, FailoverPolicy
from stratum_client.pool.link import (
    VERSION_ROLLING_MASK,
    Link,
    PoolSlot,
    new_slot,
    pool_state,
    pool_status,
)
from stratum_client.pool.link_service import LinkService
from stratum_client.pool.probes import PoolProbes
from stratum_client.pool.types import (
    ManagerEvent,
    PoolStatus,
    Share,
    ShareOutcome,
    Sink,
)
from stratum_client.protocol.jobs import JobTable
from stratum_client.protocol.messages import SubmitErrorCode
from stratum_client.protocol.session import PoolSession

__all__ = ["LOCAL_JOB_UNKNOWN", "VERSION_ROLLING_MASK", "PoolManager"]

log = structlog.get_logger(__name__)

LOCAL_JOB_UNKNOWN = "job unknown to the session"
"""Reason of the local verdict for a share whose job this session never had."""

_POLL_INTERVAL = 1.0
_CLOSE_TIMEOUT = 2.0


class PoolManager(LinkService, PoolProbes):
    """Supervises pool connections: failover, return to primary, resume, submits."""

    def __init__(
        self,
        pools: Sequence[PoolConfig],
        policy: PoolPolicy,
        *,
        sink: Sink,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not pools:
            raise InputError("pools", "at least one pool is required")
        self._policy = policy
        self._sink = sink
        self._user_agent = user_agent
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._pools = [new_slot(config, self._policy, self._user_agent) for config in pools]
        self._failover = FailoverPolicy(len(self._pools), policy, self._rng)
        self._link: Link | None = None
        self._connecting: int | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._run_task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._deferred: list[ManagerEvent] = []
        self._settled = asyncio.Event()
        """Set whenever a share's fate is delivered; drain() and grace periods wait on it."""
        self._poll_interval = min(_POLL_INTERVAL, policy.silence_timeout / 4)
        self._probe_timeout = 2 * policy.connect_timeout

    def __repr__(self) -> str:
        return f"PoolManager(pools={len(self._pools)}, active={self.active})"

    # -- reading ------------------------------------------------------------------------

    @property
    def active(self) -> int | None:
        """Index of the pool with an authorized session that takes shares, if any."""
        link = self._link
        return link.index if link is not None and link.accepting else None

    @property
    def outstanding(self) -> int:
        """Shares taken by :meth:`submit` whose outcome has not been delivered yet."""
        link = self._link
        return (len(link.in_flight) if link is not None else 0) + len(self._deferred)

    def job_table(self, index: int) -> JobTable:
        """Pool ``index``'s job table (what the dispatcher asks about jobs)."""
        return self._pools[index].jobs

    def statuses(self) -> list[PoolStatus]:
        """One status per configured pool, in config order."""
        return [self._status(index, pool) for index, pool in enumerate(self._pools)]

    def _status(self, index: int, pool: PoolSlot) -> PoolStatus:
        link = self._link
        if link is None or link.index != index or link.pool is not pool:
            link = None
        enabled, connecting = self._failover.is_enabled(index), self._connecting == index
        state = pool_state(pool, link, enabled=enabled, connecting=connecting)
        return pool_status(index, pool, link, state)

    # -- the supervisor -------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve and fail over until :meth:`close` or cancellation."""
        if self._run_task is not None:
            raise RuntimeError("PoolManager.run() is already running")
        self._run_task = asyncio.current_task()
        prober = asyncio.create_task(self._probe_loop(), name="pool-probes")
        try:
            while not self._closing:
                await self._step()
        finally:
            prober.cancel()
            for task in (prober, *self._probes):
                task.cancel()
            await asyncio.gather(prober, *self._probes, return_exceptions=True)
            self._run_task = None

    async def _step(self) -> None:
        """One decision of the supervisor: wait, or connect and serve until the end."""
        self._wake.clear()
        attempt = self._failover.next_attempt(self._clock())
        if attempt is None:
            log.warning("no pool is enabled; waiting for one")
            await self._pause(None)
            return
        if attempt.delay > 0:
            name = self._pools[attempt.pool].config.name
            log.info("waiting before reconnecting", pool=name, seconds=round(attempt.delay, 3))
            if await self._pause(attempt.delay):
                return  # something changed (switch, reload, close): decide again
        pool = self._pools[attempt.pool]
        try:
            await self._serve(attempt.pool, pool)
        except Exception:  # a bug here must not end mining for good
            log.exception("pool supervisor error", pool=pool.config.name)
            if self._still_wanted(attempt.pool, pool, current=False):
                self._failover.session_ended(attempt.pool, self._clock(), Ending.FAILED)

    async def _pause(self, seconds: float | None) -> bool:
        """Sleep until ``seconds`` pass (None: forever) or something wakes us; True if woken."""
        if seconds is None:
            await self._wake.wait()
            return True
        woken = asyncio.ensure_future(self._wake.wait())
        slept = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((woken, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            slept.cancel()
        return self._wake.is_set()

    async def _serve(self, index: int, pool: PoolSlot) -> None:
        conn = await self._connect(index, pool)
        if conn is None:
            return
        if self._closing or not self._still_wanted(index, pool):
            await conn.close(_CLOSE_TIMEOUT)  # the plan changed while we were connecting
            return
        session = PoolSession(pool.settings, resume_id=pool.resume_id, jobs=pool.jobs)
        link = Link(index, pool, conn, session)
        self._link = link
        try:
            await self._drive(link)
        finally:
            self._end_link(link)
            self._link = None
            await conn.close(_CLOSE_TIMEOUT)

    async def _connect(self, index: int, pool: PoolSlot) -> PoolConnection | None:
        host, port = pool.endpoint
        self._connecting = index
        try:
            return await open_pool_connection(
                pool.config, connect_timeout=self._policy.connect_timeout, host=host, port=port
            )
        except PoolConnectionError as exc:
            log.warning("cannot connect to pool", pool=pool.config.name, error=str(exc))
            self._note_failure(pool, str(exc))
            pool.redirect = None  # a redirect that fails falls back to the configured address
            self._failover.session_ended(index, self._clock(), Ending.FAILED)
            return None
        finally:
            self._connecting = None

    # -- shares ---------------------------------------------------------------------------

    def submit(self, share: Share) -> bool:
        """Send ``share`` on the session of ``share.pool``; never blocks.

        False: no authorized session on that pool takes shares right now; the caller keeps
        the share. True: the share will end as exactly one ShareOutcome or
        ShareUnanswered. A share the session refuses to send (its job is unknown to this
        session, or the fields do not fit the job) gets a local ShareOutcome with
        ``accepted=False``, ``latency=None`` and code 21 (job unknown) or 20, on the next
        loop iteration.
        """
        link = self._link
        if link is None or link.index != share.pool or not link.accepting:
            return False
        try:
            send = link.session.submit(
                share.job,
                share.extranonce2,
                share.ntime,
                share.nonce,
                share.version_bits,
                now=self._clock(),
            )
        except WorkError as exc:
            self._refuse_locally(link, share, exc)
            return True
        assert send.request_id is not None, "a mining.submit always carries a request id"
        link.in_flight[send.request_id] = share
        self._write(link, send.data)
        return True

    def _refuse_locally(self, link: Link, share: Share, exc: WorkError) -> None:
        if share.job.job_id in link.session.jobs:
            code, reason = SubmitErrorCode.OTHER, f"not sent: {exc}"
        else:
            code, reason = SubmitErrorCode.JOB_NOT_FOUND, LOCAL_JOB_UNKNOWN
        link.log.info("share refused locally", job_id=share.job.job_id, reason=reason)
        self._count_reject(link.pool, code)
        self._deferred.append(ShareOutcome(share, False, int(code), reason, None))
        if len(self._deferred) == 1:
            asyncio.get_running_loop().call_soon(self._flush_deferred)

    def _flush_deferred(self) -> None:
        events, self._deferred = self._deferred, []
        for event in events:
            self._emit(event)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - the caller's budget
        """Wait up to ``timeout`` s for every submitted share's outcome; returns how many
        are still outstanding (SIGTERM: stop feeding shares, drain, then close)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.outstanding:
                    self._settled.clear()
                    await self._settled.wait()
        return self.outstanding

    async def close(self) -> None:
        """Stop the supervisor and close the connection (bounded; idempotent)."""
        self._closing = True
        self._wake.set()
        if self._link is not None:
            self._link.finish(Ending.LEFT, "shutting down")
        for probe in list(self._probes):
            probe.cancel()
        task = self._run_task
        if task is not None and task is not asyncio.current_task():
            done, _ = await asyncio.wait({task}, timeout=2 * _CLOSE_TIMEOUT)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
        self._flush_deferred()

    # -- control (API, SIGHUP) -----------------------------------------------------------

    def switch_to(self, index: int) -> None:
        """Use pool ``index`` now and stay there (no automatic return) until it fails."""
        self._check_index(index)
        self._failover.switch_to(index, self._clock())
        self._leave_for(index, f"switching to pool {self._pools[index].config.name}")

    def set_enabled(self, index: int, enabled: bool) -> None:
        """Enable or disable a pool; the last enabled pool cannot be disabled."""
        self._check_index(index)
        if not enabled and self._enabled_count() == 1 and self._failover.is_enabled(index):
            raise InputError("index", f"pool {index} is the last enabled pool")
        self._failover.set_enabled(index, enabled, self._clock())
        link = self._link
        if not enabled and link is not None and link.index == index:
            link.finish(Ending.LEFT, "pool disabled", graceful=True)
        self._wake.set()

    def add_pool(self, config: PoolConfig) -> int:
        """Append a pool at the lowest priority; returns its index."""
        self._pools.append(new_slot(config, self._policy, self._user_agent))
        index = self._failover.add_pool()
        self._wake.set()
        return index

    def reload(self, pools: Sequence[PoolConfig]) -> None:
        """Replace the pool list (SIGHUP). An unchanged active pool at the same index keeps
        its connection; otherwise the manager starts over from the top of the new list.

        Counters and resume ids follow unchanged pools; hand-made changes (disabled or
        added pools, a manual switch) are dropped: the file is the truth again.
        """
        if not pools:
            raise InputError("pools", "at least one pool is required")
        self._pools = self._carry_over(pools)
        link = self._link
        keep = link is not None and self._still_wanted(link.index, link.pool, current=False)
        now = self._clock()
        self._failover = FailoverPolicy(len(self._pools), self._policy, self._rng)
        if link is not None and keep:
            self._failover.switch_to(link.index, now, pinned=False)
            if link.up:
                self._failover.session_up(link.index, link.up_at)
        elif link is not None:
            link.finish(Ending.LEFT, "pool list reloaded", graceful=True)
        log.info("pool list reloaded", pools=len(self._pools), kept_connection=keep)
        self._wake.set()

    def _carry_over(self, configs: Sequence[PoolConfig]) -> list[PoolSlot]:
        unused = list(self._pools)
        result: list[PoolSlot] = []
        for config in configs:
            same = next((p for p in unused if p.config == config), None)
            if same is None:
                result.append(new_slot(config, self._policy, self._user_agent))
            else:
                unused.remove(same)
                result.append(same)
        return result

    def _leave_for(self, index: int, reason: str) -> None:
        link = self._link
        if link is not None and link.index != index:
            link.finish(Ending.LEFT, reason, graceful=True)
        self._wake.set()

    # -- helpers --------------------------------------------------------------------------

    def _still_wanted(self, index: int, pool: PoolSlot, *, current: bool = True) -> bool:
        """``pool`` is still configured at ``index`` (and, if ``current``, chosen)."""
        if index >= len(self._pools) or self._pools[index] is not pool:
            return False
        return not current or self._failover.current == index

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._pools):
            raise InputError("index", f"no pool {index}; valid: 0..{len(self._pools) - 1}")

    def _enabled_count(self) -> int:
        return sum(self._failover.is_enabled(i) for i in range(len(self._pools)))
