"""What the pool manager does for one live link: read, poll, apply outputs, tear down.

Bytes go to the connection; the events the dispatcher cares about are forwarded as
:class:`~stratum_client.pool.types.SessionEvent`; the handshake, share verdicts, timeouts
and ``client.reconnect`` change the link and the failover policy, one handler per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from stratum_client.config import PoolPolicy
from stratum_client.errors import ProtocolError
from stratum_client.pool.connection import PoolConnectionError
from stratum_client.pool.failover import Ending, FailoverPolicy
from stratum_client.pool.link import Link, PoolSlot
from stratum_client.pool.redirect import reconnect_target
from stratum_client.pool.types import (
    ManagerEvent,
    PoolDown,
    PoolUp,
    SessionEvent,
    ShareOutcome,
    ShareUnanswered,
    Sink,
)
from stratum_client.protocol import events as ev
from stratum_client.protocol.messages import SubmitErrorCode

__all__ = ["LinkService"]

log = structlog.get_logger(__name__)

_FAILURES = (Ending.FAILED, Ending.REFUSED, Ending.SILENT, Ending.LOST)
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


class LinkService:
    """The pool manager's half that serves a live link (a mixin of PoolManager)."""

    _sink: Sink
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _policy: PoolPolicy
    _failover: FailoverPolicy
    _settled: asyncio.Event
    _poll_interval: float

    def _still_wanted(self, index: int, pool: PoolSlot, *, current: bool = True) -> bool:
        raise NotImplementedError

    def _handler(self, event: ev.Event) -> Callable[[Link, Any], None] | None:
        name = _HANDLERS.get(type(event))
        return None if name is None else getattr(self, name)

    async def _drive(self, link: Link) -> None:
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
            link.conn.listen(None)  # before the reader goes: no bytes reach a dead session
            reader.cancel()
            ticker.cancel()
            await asyncio.gather(reader, ticker, return_exceptions=True)

    def _spawn(self, link: Link, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"pool-{what}-{link.pool.config.name}")
        task.add_done_callback(lambda t: self._task_done(link, t))
        return task

    def _task_done(self, link: Link, task: asyncio.Task[None]) -> None:
        self._settled.set()  # a grace period waiting on this reader can stop now
        if task.cancelled() or task.exception() is None:
            return
        link.log.error("pool task failed", exc_info=task.exception())
        link.finish(Ending.LOST, f"internal error: {task.exception()!r}")

    async def _grace(self, link: Link, reader: asyncio.Task[None]) -> None:
        """A planned leave: stop taking shares, give the pool time to answer the sent ones."""
        self._emit_down(link)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._policy.drain_timeout):
                while link.in_flight and not reader.done():
                    self._settled.clear()
                    await self._settled.wait()

    async def _read_loop(self, link: Link) -> None:
        """The session hears the pool's bytes in the loop step that read them (a listener,
        not a task that wakes a step later); this task only waits for the end."""
        link.conn.listen(lambda data: self._received(link, data))
        try:
            await link.conn.until_closed()
        except PoolConnectionError as exc:
            link.finish(Ending.LOST, exc.problem)
        finally:
            link.conn.listen(None)  # an ended link hears nothing more (its close may read)

    def _received(self, link: Link, data: bytes) -> None:
        try:
            outputs = link.session.receive_data(data, self._clock())
        except ProtocolError as exc:
            link.conn.listen(None)  # nothing more is read from a pool that broke it
            link.log.warning("pool broke the protocol; dropping the connection", error=str(exc))
            link.finish(Ending.LOST, f"protocol error: {exc}")
            return
        self._apply(link, outputs)

    async def _tick_loop(self, link: Link) -> None:
        """Application-level liveness: submit timeouts and a pool gone silent."""
        while True:
            await self._sleep(self._poll_interval)
            self._apply(link, link.session.poll(self._clock()))

    def _end_link(self, link: Link) -> None:
        """Tell the dispatcher, report unanswered shares, and account for the ending."""
        ending, reason = link.ending or Ending.LEFT, link.reason or "pool manager stopped"
        link.reason = reason
        if ending is Ending.LOST and not link.up:
            ending = Ending.FAILED
        self._emit_down(link)
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

    def _apply(self, link: Link, outputs: list[ev.Output]) -> None:
        for output in outputs:
            if isinstance(output, ev.SendBytes):
                self._write(link, output.data)
            elif isinstance(output, _FORWARDED):
                self._forward(link, output)
            elif isinstance(output, ev.Event) and (handler := self._handler(output)):
                handler(link, output)

    def _write(self, link: Link, data: bytes) -> None:
        try:
            link.conn.write(data)
        except PoolConnectionError as exc:
            link.finish(Ending.LOST, exc.problem)

    def _forward(self, link: Link, event: ev.Event) -> None:
        if link.down:
            return
        if isinstance(event, ev.ProtocolViolation):
            link.log.warning("pool protocol violation (ignored)", detail=event.description)
        elif isinstance(event, ev.ShowMessage):
            link.log.info("message from pool", text=event.text)
        link.heard = True
        self._emit(SessionEvent(link.index, event))

    def _on_subscribed(self, link: Link, event: ev.Subscribed) -> None:
        link.subscribed = event
        link.pool.resume_id = event.subscription_id
        self._maybe_up(link)

    def _on_authorized(self, link: Link, event: ev.Authorized) -> None:
        link.authorized = True
        self._maybe_up(link)

    def _maybe_up(self, link: Link) -> None:
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

    def _on_authorization_failed(self, link: Link, event: ev.AuthorizationFailed) -> None:
        code = "" if event.code is None else f" (code {event.code})"
        link.finish(Ending.REFUSED, f"pool refused worker {event.user!r}: {event.reason}{code}")

    def _on_subscribe_failed(self, link: Link, event: ev.SubscribeFailed) -> None:
        link.finish(Ending.REFUSED, f"pool refused mining.subscribe: {event.error}")

    def _on_request_timed_out(self, link: Link, event: ev.RequestTimedOut) -> None:
        link.finish(Ending.FAILED, f"no reply to {event.method} within {event.waited:.0f} s")

    def _on_request_failed(self, link: Link, event: ev.RequestFailed) -> None:
        link.log.info(
            "pool refused an optional request", method=event.method, error=str(event.error)
        )

    def _on_silent(self, link: Link, event: ev.PoolSilent) -> None:
        link.finish(Ending.SILENT, f"pool silent for {event.idle:.1f} s")

    def _on_share_accepted(self, link: Link, event: ev.ShareAccepted) -> None:
        share = link.in_flight.pop(event.request_id, None)
        if share is None:
            link.log.info(
                "late accept for a share already reported unanswered", job_id=event.job_id
            )
            return
        link.pool.accepted += 1
        self._emit(ShareOutcome(share, True, None, "", event.latency))

    def _on_share_rejected(self, link: Link, event: ev.ShareRejected) -> None:
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

    def _on_submit_timed_out(self, link: Link, event: ev.SubmitTimedOut) -> None:
        share = link.in_flight.pop(event.request_id, None)
        if share is not None:
            self._emit(ShareUnanswered(share, f"no reply within {event.waited:.0f} s"))

    def _on_reconnect(self, link: Link, event: ev.ReconnectRequested) -> None:
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

    def _emit_down(self, link: Link) -> None:
        if link.down:
            return
        link.down = True
        if link.up or link.heard:  # what it heard from a session that never came up ends too
            reason = link.reason or "pool manager stopped"
            self._emit(PoolDown(link.index, link.pool.config.name, reason, self._clock()))

    def _emit(self, event: ManagerEvent) -> None:
        if isinstance(event, ShareOutcome | ShareUnanswered):
            self._settled.set()
        try:
            self._sink(event)
        except Exception:  # the dispatcher's bug must not take the pool connection down
            log.exception("pool event sink failed", kind=type(event).__name__)

    def _count_reject(self, pool: PoolSlot, kind: SubmitErrorCode) -> None:
        """Stale is a kind of reject, as in the dispatcher's counters."""
        pool.rejected += 1
        if kind is SubmitErrorCode.JOB_NOT_FOUND:
            pool.stale += 1

    def _note_failure(self, pool: PoolSlot, reason: str) -> None:
        pool.failures += 1
        pool.last_error = reason
        pool.last_failed = True


_HANDLERS: dict[type[ev.Event], str] = {
    ev.Subscribed: "_on_subscribed",
    ev.Authorized: "_on_authorized",
    ev.AuthorizationFailed: "_on_authorization_failed",
    ev.SubscribeFailed: "_on_subscribe_failed",
    ev.RequestTimedOut: "_on_request_timed_out",
    ev.RequestFailed: "_on_request_failed",
    ev.PoolSilent: "_on_silent",
    ev.ShareAccepted: "_on_share_accepted",
    ev.ShareRejected: "_on_share_rejected",
    ev.SubmitTimedOut: "_on_submit_timed_out",
    ev.ReconnectRequested: "_on_reconnect",
}
