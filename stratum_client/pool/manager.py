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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from stratum_client.config import PoolConfig, PoolPolicy
from stratum_client.errors import InputError, ProtocolError, WorkError
from stratum_client.pool.connection import (
    PoolConnection,
    PoolConnectionError,
    open_pool_connection,
)
from stratum_client.pool.failover import Ending, FailoverPolicy, reconnect_target
from stratum_client.pool.types import (
    ManagerEvent,
    PoolDown,
    PoolStatus,
    PoolUp,
    SessionEvent,
    Share,
    ShareOutcome,
    ShareUnanswered,
    Sink,
)
from stratum_client.protocol import events as ev
from stratum_client.protocol.messages import SubmitErrorCode
from stratum_client.protocol.session import PoolSession
from stratum_client.protocol.settings import SessionSettings
from stratum_client.work.job import Job

__all__ = ["LOCAL_JOB_UNKNOWN", "VERSION_ROLLING_MASK", "PoolManager"]

log = structlog.get_logger(__name__)

VERSION_ROLLING_MASK = 0x1FFFE000
"""BIP320 general-purpose bits, asked for when a pool has ``version_rolling`` on."""
LOCAL_JOB_UNKNOWN = "job unknown to the session"
"""Reason of the local verdict for a share whose job this session never had."""

_POLL_INTERVAL = 1.0
_PROBE_TICK = 1.0
_CLOSE_TIMEOUT = 2.0

_FORWARDED = (
    ev.NewJob,
    ev.DifficultyChanged,
    ev.VersionRollingNegotiated,
    ev.VersionRollingUnavailable,
    ev.VersionMaskChanged,
    ev.ExtranonceChanged,
    ev.ShowMessage,
    ev.DuplicateJobIgnored,
    ev.ProtocolViolation,
)
"""Session events passed to the dispatcher as :class:`SessionEvent`."""
_FAILURES = (Ending.FAILED, Ending.REFUSED, Ending.SILENT, Ending.LOST)


@dataclass(slots=True, eq=False)
class _PoolSlot:
    """One configured pool's slot in the manager: settings plus what outlives a connection."""

    config: PoolConfig
    settings: SessionSettings
    resume_id: str | None = None
    last_jobs: tuple[Job, ...] = ()
    """The last session's jobs, for the next one to adopt if the pool resumes it."""
    redirect: tuple[str, int] | None = None
    """Endpoint a honoured ``client.reconnect`` pointed at, until it fails."""
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    connects: int = 0
    failures: int = 0
    last_error: str = ""
    last_failed: bool = False

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.redirect or (self.config.host, self.config.port)


def _session_job(session: PoolSession, job: Job) -> Job:
    """The session's own copy of ``job`` when the pool re-announced the same work.

    After a resume (or a repeated clean notify) the pool sends the job again under the
    same id; only its arrival time, clean flag and stamped difficulty differ, and the
    session would refuse the older object as "different work".
    """
    known = session.jobs.get(job.job_id)
    if known is None or known is job:
        return job
    alike = replace(
        job,
        received_at=known.received_at,
        clean_jobs=known.clean_jobs,
        difficulty=known.difficulty,
    )
    return known if alike == known else job


class _Link:
    """One connection and its session, from connect to teardown."""

    def __init__(
        self, index: int, pool: _PoolSlot, conn: PoolConnection, session: PoolSession
    ) -> None:
        self.index = index
        self.pool = pool
        self.conn = conn
        self.session = session
        self.log = log.bind(pool=pool.config.name)
        self.in_flight: dict[int, Share] = {}
        self.subscribed: ev.Subscribed | None = None
        self.authorized = False
        self.up = False
        self.up_at = 0.0
        self.down = False
        """The dispatcher was told this session is over (PoolDown): forward nothing more."""
        self.heard = False
        """The dispatcher got an event from this session (a job may come before authorize)."""
        self.ending: Ending | None = None
        self.reason = ""
        self.wait = 0.0
        self.graceful = False
        self.ended = asyncio.Event()

    @property
    def accepting(self) -> bool:
        return self.up and not self.down and self.ending is None

    def finish(
        self, ending: Ending, reason: str, *, wait: float = 0.0, graceful: bool = False
    ) -> None:
        """End the session (first call wins); ``graceful`` waits for in-flight replies."""
        if self.ending is not None:
            return
        self.ending, self.reason, self.wait, self.graceful = ending, reason, wait, graceful
        self.ended.set()


class PoolManager:
    """Supervises pool connections: failover, return to primary, resume, submits."""

    def __init__(
        self,
        pools: Sequence[PoolConfig],
        policy: PoolPolicy,
        *,
        sink: Sink,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not pools:
            raise InputError("pools", "at least one pool is required")
        self._policy = policy
        self._sink = sink
        self._user_agent = user_agent
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._pools = [self._new_pool(config) for config in pools]
        self._failover = FailoverPolicy(len(self._pools), policy, self._rng)
        self._link: _Link | None = None
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
        self._handlers: dict[type[ev.Event], Callable[[_Link, Any], None]] = {
            ev.Subscribed: self._on_subscribed,
            ev.Authorized: self._on_authorized,
            ev.AuthorizationFailed: self._on_authorization_failed,
            ev.SubscribeFailed: self._on_subscribe_failed,
            ev.RequestTimedOut: self._on_request_timed_out,
            ev.RequestFailed: self._on_request_failed,
            ev.PoolSilent: self._on_silent,
            ev.ShareAccepted: self._on_share_accepted,
            ev.ShareRejected: self._on_share_rejected,
            ev.SubmitTimedOut: self._on_submit_timed_out,
            ev.ReconnectRequested: self._on_reconnect,
        }

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

    def statuses(self) -> list[PoolStatus]:
        """One status per configured pool, in config order."""
        return [self._status(index, pool) for index, pool in enumerate(self._pools)]

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
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    async def _serve(self, index: int, pool: _PoolSlot) -> None:
        conn = await self._connect(index, pool)
        if conn is None:
            return
        if self._closing or not self._still_wanted(index, pool):
            await conn.close(_CLOSE_TIMEOUT)  # the plan changed while we were connecting
            return
        session = PoolSession(pool.settings, resume_id=pool.resume_id, resume_jobs=pool.last_jobs)
        link = _Link(index, pool, conn, session)
        self._link = link
        try:
            await self._drive(link)
        finally:
            self._end_link(link)
            self._link = None
            await conn.close(_CLOSE_TIMEOUT)

    async def _connect(self, index: int, pool: _PoolSlot) -> PoolConnection | None:
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

    async def _drive(self, link: _Link) -> None:
        """Run the session until it ends; a graceful end first waits for share replies."""
        link.log.info(
            "connected to pool",
            peer=link.conn.peer,
            tls=link.conn.tls,
            resuming=link.pool.resume_id is not None,
        )
        self._apply(link, link.session.start(self._clock()))
        reader = self._spawn(link, self._read_loop(link), "read")
        ticker = self._spawn(link, self._tick_loop(link), "poll")
        try:
            await link.ended.wait()
            if link.graceful and link.in_flight:
                await self._grace(link, reader)
        finally:
            reader.cancel()
            ticker.cancel()
            await asyncio.gather(reader, ticker, return_exceptions=True)

    def _spawn(self, link: _Link, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"pool-{what}-{link.pool.config.name}")
        task.add_done_callback(lambda t: self._task_done(link, t))
        return task

    def _task_done(self, link: _Link, task: asyncio.Task[None]) -> None:
        self._settled.set()  # a grace period waiting on this reader can stop now
        if task.cancelled() or task.exception() is None:
            return
        link.log.error("pool task failed", exc_info=task.exception())
        link.finish(Ending.LOST, f"internal error: {task.exception()!r}")

    async def _grace(self, link: _Link, reader: asyncio.Task[None]) -> None:
        """A planned leave: stop taking shares, give the pool time to answer the sent ones."""
        self._emit_down(link)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._policy.drain_timeout):
                while link.in_flight and not reader.done():
                    self._settled.clear()
                    await self._settled.wait()

    async def _read_loop(self, link: _Link) -> None:
        while True:
            try:
                data = await link.conn.read()
            except PoolConnectionError as exc:
                link.finish(Ending.LOST, exc.problem)
                return
            try:
                outputs = link.session.receive_data(data, self._clock())
            except ProtocolError as exc:
                link.log.warning("pool broke the protocol; dropping the connection", error=str(exc))
                link.finish(Ending.LOST, f"protocol error: {exc}")
                return
            self._apply(link, outputs)

    async def _tick_loop(self, link: _Link) -> None:
        """Application-level liveness: submit timeouts and a pool gone silent."""
        while True:
            await asyncio.sleep(self._poll_interval)
            self._apply(link, link.session.poll(self._clock()))

    def _end_link(self, link: _Link) -> None:
        """Tell the dispatcher, report unanswered shares, and account for the ending."""
        ending, reason = link.ending or Ending.LEFT, link.reason or "pool manager stopped"
        link.reason = reason
        if ending is Ending.LOST and not link.up:
            ending = Ending.FAILED
        self._emit_down(link)
        if link.session.jobs:
            link.pool.last_jobs = tuple(link.session.jobs.values())
        unanswered = list(link.in_flight.values())
        link.in_flight.clear()
        for share in unanswered:
            self._emit(ShareUnanswered(share, reason))
        if ending in _FAILURES:
            link.log.warning("pool connection ended", reason=reason, unanswered=len(unanswered))
            self._note_failure(link.pool, reason)
        else:
            link.log.info("pool connection closed", reason=reason, unanswered=len(unanswered))
        if ending is not Ending.RECONNECT:
            link.pool.redirect = None
        if ending is not Ending.LEFT and self._still_wanted(link.index, link.pool, current=False):
            self._failover.session_ended(link.index, self._clock(), ending, wait=link.wait)

    def _emit_down(self, link: _Link) -> None:
        if link.down:
            return
        link.down = True
        if link.up or link.heard:  # what it heard from a session that never came up ends too
            reason = link.reason or "pool manager stopped"
            self._emit(PoolDown(link.index, link.pool.config.name, reason, self._clock()))

    # -- session outputs -----------------------------------------------------------------

    def _apply(self, link: _Link, outputs: list[ev.Output]) -> None:
        for output in outputs:
            if isinstance(output, ev.SendBytes):
                self._write(link, output.data)
            elif isinstance(output, _FORWARDED):
                self._forward(link, output)
            elif isinstance(output, ev.Event) and (handler := self._handlers.get(type(output))):
                handler(link, output)

    def _write(self, link: _Link, data: bytes) -> None:
        try:
            link.conn.write(data)
        except PoolConnectionError as exc:
            link.finish(Ending.LOST, exc.problem)

    def _forward(self, link: _Link, event: ev.Event) -> None:
        if link.down:
            return
        if isinstance(event, ev.ProtocolViolation):
            link.log.warning("pool protocol violation (ignored)", detail=event.description)
        elif isinstance(event, ev.ShowMessage):
            link.log.info("message from pool", text=event.text)
        link.heard = True
        self._emit(SessionEvent(link.index, event))

    def _on_subscribed(self, link: _Link, event: ev.Subscribed) -> None:
        link.subscribed = event
        link.pool.resume_id = event.subscription_id
        self._maybe_up(link)

    def _on_authorized(self, link: _Link, event: ev.Authorized) -> None:
        link.authorized = True
        self._maybe_up(link)

    def _maybe_up(self, link: _Link) -> None:
        """PoolUp once both subscribe and authorize succeeded, whatever their order."""
        sub = link.subscribed
        if link.up or link.ending is not None or sub is None or not link.authorized:
            return
        now = self._clock()
        link.up, link.up_at = True, now
        link.pool.connects += 1
        link.pool.last_failed = False
        self._failover.session_up(link.index, now)
        en1 = link.session.extranonce1 or b""
        size = link.session.extranonce2_size
        link.log.info("pool up", resumed=sub.resumed, extranonce2_size=size)
        below = link.pool.config.submit_block_candidates_below_difficulty
        self._emit(PoolUp(link.index, link.pool.config.name, en1, size, sub.resumed, now, below))

    def _on_authorization_failed(self, link: _Link, event: ev.AuthorizationFailed) -> None:
        code = "" if event.code is None else f" (code {event.code})"
        link.finish(Ending.REFUSED, f"pool refused worker {event.user!r}: {event.reason}{code}")

    def _on_subscribe_failed(self, link: _Link, event: ev.SubscribeFailed) -> None:
        link.finish(Ending.REFUSED, f"pool refused mining.subscribe: {event.error}")

    def _on_request_timed_out(self, link: _Link, event: ev.RequestTimedOut) -> None:
        link.finish(Ending.FAILED, f"no reply to {event.method} within {event.waited:.0f} s")

    def _on_request_failed(self, link: _Link, event: ev.RequestFailed) -> None:
        link.log.info(
            "pool refused an optional request", method=event.method, error=str(event.error)
        )

    def _on_silent(self, link: _Link, event: ev.PoolSilent) -> None:
        link.finish(Ending.SILENT, f"pool silent for {event.idle:.1f} s")

    def _on_share_accepted(self, link: _Link, event: ev.ShareAccepted) -> None:
        share = link.in_flight.pop(event.request_id, None)
        if share is None:
            link.log.info(
                "late accept for a share already reported unanswered", job_id=event.job_id
            )
            return
        link.pool.accepted += 1
        self._emit(ShareOutcome(share, True, None, "", event.latency))

    def _on_share_rejected(self, link: _Link, event: ev.ShareRejected) -> None:
        share = link.in_flight.pop(event.request_id, None)
        if share is None:
            link.log.info(
                "late reject for a share already reported unanswered",
                job_id=event.job_id,
                reason=event.reason,
            )
            return
        self._count_reject(link.pool, event.kind)
        self._emit(ShareOutcome(share, False, event.code, event.reason, event.latency))

    def _on_submit_timed_out(self, link: _Link, event: ev.SubmitTimedOut) -> None:
        share = link.in_flight.pop(event.request_id, None)
        if share is not None:
            self._emit(ShareUnanswered(share, f"no reply within {event.waited:.0f} s"))

    def _on_reconnect(self, link: _Link, event: ev.ReconnectRequested) -> None:
        config = link.pool.config
        target = reconnect_target(
            (link.conn.host, link.conn.port),
            config.host,
            (event.host, event.port, event.wait),
            same_domain_only=self._policy.reconnect_same_domain_only,
        )
        if target is None:
            link.log.warning(
                "ignoring client.reconnect to another domain", host=event.host, port=event.port
            )
            return
        configured = (config.host, config.port)
        redirect = (target.host, target.port)
        link.pool.redirect = None if redirect == configured else redirect
        reason = f"pool asked to reconnect to {target.host}:{target.port} in {target.wait:g} s"
        link.log.info("following client.reconnect", host=target.host, port=target.port)
        link.finish(Ending.RECONNECT, reason, wait=target.wait, graceful=True)

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
                _session_job(link.session, share.job),
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

    def _refuse_locally(self, link: _Link, share: Share, exc: WorkError) -> None:
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

    def _count_reject(self, pool: _PoolSlot, kind: SubmitErrorCode) -> None:
        """Stale is a kind of reject, as in the dispatcher's counters."""
        pool.rejected += 1
        if kind is SubmitErrorCode.JOB_NOT_FOUND:
            pool.stale += 1

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

    # -- probing higher-priority pools ---------------------------------------------------

    async def _probe_loop(self) -> None:
        while not self._closing:
            wait = self._failover.next_probe_in(self._clock())
            await asyncio.sleep(_PROBE_TICK if wait is None else min(wait, _PROBE_TICK))
            for index in self._failover.probes_due(self._clock()):
                pool = self._pools[index]
                task = asyncio.create_task(
                    self._probe(index, pool), name=f"pool-probe-{pool.config.name}"
                )
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, index: int, pool: _PoolSlot) -> None:
        """Probe one pool; move back to it when the policy says its streak is long enough."""
        try:
            ok, detail = await self._probe_pool(pool)
        except Exception as exc:  # a bug in a probe must not stop future probes
            log.exception("pool probe error", pool=pool.config.name)
            ok, detail = False, f"probe error: {exc!r}"
        if not self._still_wanted(index, pool, current=False):
            return  # the pool list was reloaded meanwhile
        pool.last_failed = not ok
        if ok:
            log.info("probe succeeded", pool=pool.config.name)
        else:
            pool.last_error = detail
            log.debug("probe failed", pool=pool.config.name, error=detail)
        target = self._failover.probe_finished(index, ok, self._clock())
        if target is not None:
            name = self._pools[target].config.name
            log.info("higher-priority pool healthy long enough; returning to it", pool=name)
            self._leave_for(target, f"returning to higher-priority pool {name}")

    async def _probe_pool(self, pool: _PoolSlot) -> tuple[bool, str]:
        """Connect, subscribe, authorize and wait for a job, then hang up."""
        try:
            conn = await open_pool_connection(
                pool.config, connect_timeout=self._policy.connect_timeout
            )
        except PoolConnectionError as exc:
            return False, str(exc)
        try:
            async with asyncio.timeout(self._probe_timeout):
                return await self._probe_session(conn, PoolSession(pool.settings))
        except TimeoutError:
            return False, f"probe: no job within {self._probe_timeout:g} s"
        except (PoolConnectionError, ProtocolError) as exc:
            return False, f"probe: {exc}"
        finally:
            await conn.close(_CLOSE_TIMEOUT)

    async def _probe_session(self, conn: PoolConnection, session: PoolSession) -> tuple[bool, str]:
        authorized = has_job = False
        outputs = session.start(self._clock())
        while True:
            for output in outputs:
                if isinstance(output, ev.SendBytes):
                    conn.write(output.data)
                elif isinstance(output, ev.AuthorizationFailed | ev.SubscribeFailed):
                    return False, "probe: the pool refused the handshake"
                authorized = authorized or isinstance(output, ev.Authorized)
                has_job = has_job or isinstance(output, ev.NewJob)
            if authorized and has_job:
                return True, "ok"
            outputs = session.receive_data(await conn.read(), self._clock())

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
        self._pools.append(self._new_pool(config))
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

    def _carry_over(self, configs: Sequence[PoolConfig]) -> list[_PoolSlot]:
        unused = list(self._pools)
        result: list[_PoolSlot] = []
        for config in configs:
            same = next((p for p in unused if p.config == config), None)
            if same is None:
                result.append(self._new_pool(config))
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

    def _new_pool(self, config: PoolConfig) -> _PoolSlot:
        settings = SessionSettings(
            user=config.user,
            password=config.password.reveal(),
            user_agent=self._user_agent,
            version_mask=VERSION_ROLLING_MASK if config.version_rolling else 0,
            version_bits_form=config.version_bits_form,
            suggest_difficulty=config.suggest_difficulty,
            extranonce_subscribe=config.extranonce_subscribe,
            submit_timeout=self._policy.submit_timeout,
            setup_timeout=self._policy.connect_timeout,
            idle_timeout=self._policy.silence_timeout,
        )
        return _PoolSlot(config, settings)

    def _still_wanted(self, index: int, pool: _PoolSlot, *, current: bool = True) -> bool:
        """``pool`` is still configured at ``index`` (and, if ``current``, chosen)."""
        if index >= len(self._pools) or self._pools[index] is not pool:
            return False
        return not current or self._failover.current == index

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._pools):
            raise InputError("index", f"no pool {index}; valid: 0..{len(self._pools) - 1}")

    def _enabled_count(self) -> int:
        return sum(self._failover.is_enabled(i) for i in range(len(self._pools)))

    def _note_failure(self, pool: _PoolSlot, reason: str) -> None:
        pool.failures += 1
        pool.last_error = reason
        pool.last_failed = True

    def _emit(self, event: ManagerEvent) -> None:
        if isinstance(event, ShareOutcome | ShareUnanswered):
            self._settled.set()
        try:
            self._sink(event)
        except Exception:  # the dispatcher's bug must not take the pool connection down
            log.exception("pool event sink failed", kind=type(event).__name__)

    def _status(self, index: int, pool: _PoolSlot) -> PoolStatus:
        link = self._link
        if link is None or link.index != index or link.pool is not pool:
            link = None
        live = link if link is not None and link.accepting else None
        return PoolStatus(
            index=index,
            name=pool.config.name,
            url=pool.config.url,
            user=pool.config.user,
            state=self._state(index, pool, link),
            priority=index,
            difficulty=live.session.difficulty if live is not None else None,
            accepted=pool.accepted,
            rejected=pool.rejected,
            stale=pool.stale,
            connects=pool.connects,
            failures=pool.failures,
            last_error=pool.last_error,
            version_mask=live.session.version_mask if live is not None else 0,
        )

    def _state(self, index: int, pool: _PoolSlot, link: _Link | None) -> str:
        if not self._failover.is_enabled(index):
            return "disabled"
        if link is not None and link.accepting:
            return "active"
        if (link is not None and link.ending is None) or self._connecting == index:
            return "connecting"
        return "failed" if pool.last_failed else "standby"
