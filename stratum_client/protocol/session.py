"""The Stratum v1 client state machine for one pool connection, without any I/O.

The shell owns the socket and the clock: it calls :meth:`PoolSession.start` once
connected, passes received bytes to :meth:`PoolSession.receive_data`, submits shares
with :meth:`PoolSession.submit` and calls :meth:`PoolSession.poll` about once a second.
Each call returns an ordered list of outputs (events plus :class:`SendBytes`). Use a
fresh session per connection and hand the previous ``subscription_id`` in as
``resume_id``, and the pool's :class:`~stratum_client.protocol.jobs.JobTable` as ``jobs``:
the session changes it, and it outlives the connection.

**A resumed session keeps the jobs of the block it left.** After a reconnect the pool
re-announces its current job with ``clean_jobs`` set, because the new connection has no
jobs yet, not because a block was found. When the pool accepted the resume (same
subscription id and extranonce1), the first notify adopts the previous session's jobs
on the same previous-block hash and is reported as not clean, so shares found on them
while the pool was away can still be submitted. Pools that keep jobs per block (the
usual design) credit them; one that forgot them answers "job not found", a counted reject.
A first notify on another block voids them as usual.

Only :class:`ProtocolError` escapes for pool misbehaviour, and it means "drop the
connection". Anything recoverable becomes a :class:`ProtocolViolation` event, and the
offending message is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum

from stratum_client.errors import InputError, ProtocolError, StratumClientError, WorkError
from stratum_client.protocol import events as ev
from stratum_client.protocol import params as wire
from stratum_client.protocol import replies as rp
from stratum_client.protocol.codec import LineCodec, encode
from stratum_client.protocol.events import Output, SendBytes
from stratum_client.protocol.jobs import JobTable, submit_params
from stratum_client.protocol.messages import (
    Message,
    Notification,
    Request,
    Response,
    StratumError,
    preview,
)
from stratum_client.protocol.rolling import VersionRolling
from stratum_client.protocol.settings import SessionSettings
from stratum_client.protocol.tracker import Pending, RequestTracker
from stratum_client.work.job import Job
from stratum_client.work.notify import parse_notify

__all__ = ["PoolSession", "SessionState"]

CONFIGURE, SUBSCRIBE, AUTHORIZE = "mining.configure", "mining.subscribe", "mining.authorize"
_MAX_DEFERRED = 16  # notifies held while waiting for the subscribe reply

_MASK_EVENTS = (ev.VersionRollingNegotiated, ev.VersionMaskChanged, ev.VersionRollingUnavailable)
_NotifyHandler = Callable[[Notification, float], list[Output]]
_ReplyHandler = Callable[[Pending, Response, float], list[Output]]


class SessionState(Enum):
    """Where the handshake stands."""

    NEW = "new"
    SUBSCRIBING = "subscribing"
    AUTHORIZING = "authorizing"
    READY = "ready"
    FAILED = "failed"


class PoolSession:
    """Sans-IO Stratum v1 session: bytes and times in, events and bytes out."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        resume_id: str | None = None,
        jobs: JobTable | None = None,
    ) -> None:
        self._settings = settings
        self._resume_id = resume_id
        self._carried = False
        """The first notify adopts the held jobs of its block: set by a confirmed resume."""
        self._codec = LineCodec(settings.max_line)
        self._requests = RequestTracker(settings.max_outstanding)
        self._jobs = JobTable(settings.max_jobs) if jobs is None else jobs
        self._deferred: list[tuple[Notification, float]] = []
        self._extranonce_known = False
        self._difficulty = 1.0  # Stratum's implicit difficulty until set_difficulty
        self._rolling = VersionRolling(settings.version_mask, settings.min_bit_count)
        self._subscription_id: str | None = None
        self._subscribe_id: int | None = None
        self._authorize_id: int | None = None
        self._resume_retried = False
        self._started = self._authorized = self._failed = False
        self._last_heard = 0.0
        self._silence_reported = False
        self._notify_handlers: dict[str, _NotifyHandler] = {
            "mining.notify": self._on_notify,
            "mining.set_difficulty": self._on_set_difficulty,
            "mining.set_extranonce": self._on_set_extranonce,
            "mining.set_version_mask": self._on_set_version_mask,
            "client.reconnect": rp.on_reconnect,
            "client.show_message": rp.on_show_message,
            "client.get_version": self._on_get_version,
            "mining.ping": rp.on_ping,
        }
        self._reply_handlers: dict[str, _ReplyHandler] = {
            CONFIGURE: self._on_configure_reply,
            SUBSCRIBE: self._on_subscribe_reply,
            AUTHORIZE: self._on_authorize_reply,
            rp.SUBMIT: rp.on_submit_reply,
            rp.SUGGEST_DIFFICULTY: rp.on_optional_reply,
            rp.EXTRANONCE_SUBSCRIBE: rp.on_optional_reply,
        }

    def __repr__(self) -> str:
        return (
            f"PoolSession(user={self._settings.user!r}, state={self.state.value}, "
            f"difficulty={self._difficulty:g}, version_mask={self._rolling.mask:#010x}, "
            f"jobs={len(self._jobs)}, outstanding={len(self._requests)})"
        )

    @property
    def settings(self) -> SessionSettings:
        return self._settings

    @property
    def state(self) -> SessionState:
        if self._failed:
            return SessionState.FAILED
        if self._extranonce_known and self._authorized:
            return SessionState.READY
        if self._extranonce_known:
            return SessionState.AUTHORIZING
        return SessionState.SUBSCRIBING if self._started else SessionState.NEW

    @property
    def difficulty(self) -> float:
        """Share difficulty in force now; check shares against this at check time."""
        return self._difficulty

    @property
    def version_mask(self) -> int:
        """Mask new jobs get (0 without version rolling)."""
        return self._rolling.mask

    @property
    def extranonce1(self) -> bytes | None:
        return self._jobs.extranonce1 if self._extranonce_known else None

    @property
    def extranonce2_size(self) -> int:
        return self._jobs.extranonce2_size if self._extranonce_known else 0

    @property
    def subscription_id(self) -> str | None:
        """Pass this as ``resume_id`` to the next connection's session."""
        return self._subscription_id

    @property
    def jobs(self) -> Mapping[str, Job]:
        """Read-only view of the jobs a share may still be submitted for, oldest first."""
        return self._jobs.view

    @property
    def job_table(self) -> JobTable:
        """The pool's job table this session changes (hand it to the next session)."""
        return self._jobs

    @property
    def outstanding(self) -> int:
        """Requests awaiting a reply (mostly shares)."""
        return len(self._requests)

    def start(self, now: float) -> list[Output]:
        """The opening requests: configure (if rolling is wanted), subscribe, authorize."""
        if self._started:
            raise RuntimeError("PoolSession.start() called twice; use one session per connection")
        self._started = True
        self._last_heard = now
        out: list[Output] = []
        configure = self._rolling.configure_params()
        if configure is not None:
            out.append(self._request(CONFIGURE, configure, now, None))
        else:
            off = ev.VersionRollingUnavailable("version rolling disabled (mask 0)")
            out.extend(self._masked([off]))
        out.append(self._send_subscribe(now, self._resume_id))
        out.append(self._send_authorize(now))
        return out

    def receive_data(self, data: bytes, now: float) -> list[Output]:
        """Bytes from the socket; raises :class:`ProtocolError` if the stream is broken."""
        out: list[Output] = []
        for message in self._codec.feed(data):
            out.extend(self.receive(message, now))
        return out

    def receive(self, message: Message, now: float) -> list[Output]:
        """One decoded message (when the shell runs its own :class:`LineCodec`)."""
        self._last_heard = now
        self._silence_reported = False
        if isinstance(message, Response):
            return rp.scrubbed(self._on_response(message, now), self._settings.password)
        return rp.scrubbed(self._on_notification(message, now), self._settings.password)

    def submit(
        self,
        job: Job | str,
        extranonce2: bytes,
        ntime: int,
        nonce: int,
        version_bits: int = 0,
        *,
        now: float,
    ) -> SendBytes:
        """Build a ``mining.submit``; raises :class:`WorkError` instead of sending a
        share the pool would certainly reject (unknown or stale job, wrong sizes)."""
        known = self._jobs.resolve(job)
        share = submit_params(
            self._settings.user, known, extranonce2=extranonce2, ntime=ntime, nonce=nonce,
            version_bits=version_bits,
        )  # fmt: skip
        timeout = self._settings.submit_timeout
        return self._request(rp.SUBMIT, share, now, timeout, job_id=known.job_id)

    def poll(self, now: float) -> list[Output]:
        """Report requests that went unanswered and a pool gone silent."""
        out: list[Output] = [rp.timed_out(p, now) for p in self._requests.expire(now)]
        limit = self._settings.idle_timeout
        idle = now - self._last_heard
        if self._started and limit is not None and idle >= limit and not self._silence_reported:
            self._silence_reported = True
            out.append(ev.PoolSilent(idle))
        return out

    # -- outgoing -------------------------------------------------------------------

    def _request(
        self, method: str, call: list[object], now: float, timeout: float | None,
        *, quiet: bool = False, job_id: str = "",
    ) -> SendBytes:  # fmt: skip
        pending = self._requests.open(method, now, timeout, quiet=quiet, job_id=job_id)
        data = encode(Request(pending.request_id, method, call))
        return SendBytes(data, method, pending.request_id)

    def _send_subscribe(self, now: float, resume_id: str | None) -> SendBytes:
        call: list[object] = [self._settings.user_agent]
        if resume_id is not None:
            call.append(resume_id)
        self._requests.silence(self._subscribe_id)
        send = self._request(SUBSCRIBE, call, now, self._settings.setup_timeout)
        self._subscribe_id = send.request_id
        return send

    def _send_authorize(self, now: float) -> SendBytes:
        self._requests.silence(self._authorize_id)
        call: list[object] = [self._settings.user, self._settings.password]
        send = self._request(AUTHORIZE, call, now, self._settings.setup_timeout)
        self._authorize_id = send.request_id
        return send

    def _after_authorize(self, now: float) -> list[Output]:
        timeout = self._settings.setup_timeout
        return [
            self._request(method, call, now, timeout, quiet=True)
            for method, call in rp.optional_requests(self._settings)
        ]

    # -- notifications from the pool ------------------------------------------------

    def _on_notification(self, message: Notification, now: float) -> list[Output]:
        handler = self._notify_handlers.get(message.method)
        if handler is None:
            return rp.unknown_method(message)
        try:
            return handler(message, now)
        except (InputError, WorkError) as exc:
            return [ev.ProtocolViolation(f"{message.method} ignored: {exc}")]

    def _on_notify(self, message: Notification, now: float) -> list[Output]:
        en1 = self.extranonce1
        if en1 is None:  # no subscribe reply yet: keep it until there is
            self._deferred.append((message, now))
            del self._deferred[:-_MAX_DEFERRED]
            return []
        try:
            job = parse_notify(
                message.params,
                extranonce1=en1,
                extranonce2_size=self._jobs.extranonce2_size,
                difficulty=self._difficulty,
                version_mask=self._rolling.mask,
                received_at=now,
                version_bits_form=self._settings.version_bits_form,
            )
        except StratumClientError as exc:
            raise InputError("params", str(exc)) from exc
        clean, first = job.clean_jobs, self._carried
        if first:  # a resumed session keeps the jobs of the block it left
            self._carried = False
            clean = clean and not self._jobs.adopt_block(job)
        if not self._jobs.add(job, clean=clean, repeat=first):
            return [ev.DuplicateJobIgnored(job.job_id)]
        return [ev.NewJob(job, clean)]

    def _on_set_difficulty(self, message: Notification, now: float) -> list[Output]:
        wire.arity(message.params, 1, "[difficulty]")
        value = wire.difficulty(message.params[0])
        previous, self._difficulty = self._difficulty, value
        return [ev.DifficultyChanged(value, previous, now)]

    def _on_set_extranonce(self, message: Notification, now: float) -> list[Output]:
        wire.arity(message.params, 1, "[extranonce1, extranonce2_size]")
        en1 = wire.extranonce1(message.params[0])
        size = self.extranonce2_size
        if len(message.params) > 1 and message.params[1] is not None:
            size = wire.extranonce2_size(message.params[1])
        self._extranonce_known = True
        self._jobs.set_extranonce(en1, size)
        return [ev.ExtranonceChanged(en1, size)]

    def _on_set_version_mask(self, message: Notification, now: float) -> list[Output]:
        wire.arity(message.params, 1, "[mask]")
        return self._masked(self._rolling.set_mask(message.params[0]))

    def _masked(self, outputs: Iterable[Output]) -> list[Output]:
        """Outputs of a version-rolling step; a new mask applies to held jobs at once."""
        out = list(outputs)
        if any(isinstance(o, _MASK_EVENTS) for o in out):
            self._jobs.set_version_mask(self._rolling.mask)
        return out

    def _on_get_version(self, message: Notification, now: float) -> list[Output]:
        return [rp.answer(message, self._settings.user_agent)]

    # -- replies to our requests ----------------------------------------------------

    def _on_response(self, response: Response, now: float) -> list[Output]:
        pending = self._requests.take(response.id)
        if pending is not None:
            return self._reply_handlers[pending.method](pending, response, now)
        return [
            ev.ProtocolViolation(
                f"reply to unknown request id {preview(response.id)}: "
                f"result={preview(response.result)} error={response.error}"
            )
        ]

    def _on_configure_reply(self, pending: Pending, response: Response, now: float) -> list[Output]:
        return self._masked(self._rolling.on_configure_reply(response))

    def _on_subscribe_reply(self, pending: Pending, response: Response, now: float) -> list[Output]:
        if pending.request_id != self._subscribe_id:
            return []
        out: list[Output] = self._masked(self._rolling.ignored(SUBSCRIBE))
        failure = response.failure()
        if failure is not None:
            return out + self._subscribe_refused(failure, now)
        return out + self._subscribed(response)

    def _subscribed(self, response: Response) -> list[Output]:
        try:
            sub_id, en1, en2_size = wire.subscription(response.result)
        except InputError as exc:
            raise ProtocolError(f"mining.subscribe result unusable: {exc}") from exc
        self._subscription_id, self._extranonce_known = sub_id, True
        resumed = not self._resume_retried and sub_id is not None and sub_id == self._resume_id
        self._jobs.subscribed(en1, en2_size)
        self._carried = resumed
        out: list[Output] = [ev.Subscribed(en1, en2_size, sub_id, resumed)]
        deferred, self._deferred = self._deferred, []
        for message, received_at in deferred:
            out.extend(self._on_notification(message, received_at))
        return out

    def _subscribe_refused(self, failure: StratumError, now: float) -> list[Output]:
        """A refused resume is retried once without the id (authorize follows it again)."""
        if self._resume_id is None or self._resume_retried:
            self._failed = True
            return [ev.SubscribeFailed(failure)]
        self._resume_retried = True
        out: list[Output] = [self._send_subscribe(now, None)]
        if not self._authorized:
            out.append(self._send_authorize(now))
        return out

    def _on_authorize_reply(self, pending: Pending, response: Response, now: float) -> list[Output]:
        if pending.request_id != self._authorize_id:
            return []
        out = self._masked(self._rolling.ignored(AUTHORIZE))
        user = self._settings.user
        failure = rp.refusal(response)
        if failure is None:
            self._authorized = True
            return [*out, ev.Authorized(user), *self._after_authorize(now)]
        self._failed = True
        return [*out, ev.AuthorizationFailed(user, failure.message, failure.code)]
