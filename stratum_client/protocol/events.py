"""What :class:`~stratum_client.protocol.session.PoolSession` tells its I/O shell.

Every session call returns one ordered list of :data:`Output`: :class:`Event` subclasses
report what happened, and :class:`SendBytes` (the only :class:`Action`) carries bytes to
write to the socket. Keeping both in one list preserves their order, for example
``Authorized`` comes before the ``mining.suggest_difficulty`` that follows it. The shell
dispatches with ``match``. Times are the ``now`` floats the shell passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stratum_client.protocol.messages import StratumError, SubmitErrorCode
from stratum_client.work.job import Job

__all__ = [
    "Action",
    "AuthorizationFailed",
    "Authorized",
    "DifficultyChanged",
    "DuplicateJobIgnored",
    "Event",
    "ExtranonceChanged",
    "NewJob",
    "Output",
    "PoolSilent",
    "ProtocolViolation",
    "ReconnectRequested",
    "RequestFailed",
    "RequestTimedOut",
    "SendBytes",
    "ShareAccepted",
    "ShareRejected",
    "ShowMessage",
    "SubmitTimedOut",
    "SubscribeFailed",
    "Subscribed",
    "VersionMaskChanged",
    "VersionRollingNegotiated",
    "VersionRollingUnavailable",
]


@dataclass(frozen=True, slots=True)
class Action:
    """Something the shell must do."""


@dataclass(frozen=True, slots=True)
class SendBytes(Action):
    """Write ``data`` to the pool. The repr omits the bytes: they may hold the password."""

    data: bytes = field(repr=False)
    method: str
    """The request method, or ``"reply:<method>"`` (``"reply:method-not-found"`` for methods
    we do not know) when answering the pool."""
    request_id: int | None = None
    """Our id for a request (None for replies), to correlate later events."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened on the session."""


@dataclass(frozen=True, slots=True)
class Subscribed(Event):
    """``mining.subscribe`` succeeded; ``resumed`` means the pool kept our old session."""

    extranonce1: bytes
    extranonce2_size: int
    subscription_id: str | None
    resumed: bool


@dataclass(frozen=True, slots=True)
class SubscribeFailed(Event):
    """The pool refused ``mining.subscribe`` (also without a resume id): drop the pool."""

    error: StratumError


@dataclass(frozen=True, slots=True)
class Authorized(Event):
    """``mining.authorize`` succeeded; shares may be submitted."""

    user: str


@dataclass(frozen=True, slots=True)
class AuthorizationFailed(Event):
    """The pool refused the worker; the session is dead (the reason never has the password)."""

    user: str
    reason: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class VersionRollingNegotiated(Event):
    """BIP310 granted: ``mask`` is the pool's mask intersected with ours."""

    mask: int


@dataclass(frozen=True, slots=True)
class VersionRollingUnavailable(Event):
    """BIP310 refused, ignored or empty: jobs carry mask 0 and shares no version bits."""

    reason: str


@dataclass(frozen=True, slots=True)
class VersionMaskChanged(Event):
    """``mining.set_version_mask``: ``mask`` (already intersected) applies at once, to the
    jobs held and to new ones (BIP310: the pool checks every later submit against it)."""

    mask: int


@dataclass(frozen=True, slots=True)
class DifficultyChanged(Event):
    """A valid ``mining.set_difficulty``; in force for checks from ``at`` onwards."""

    difficulty: float
    previous: float
    at: float


@dataclass(frozen=True, slots=True)
class NewJob(Event):
    """A new job; ``clean`` means every older job is stale now."""

    job: Job
    clean: bool


@dataclass(frozen=True, slots=True)
class DuplicateJobIgnored(Event):
    """A non-clean notify repeated a job id we already hold; restarting it would
    only recreate identical work and duplicate shares."""

    job_id: str


@dataclass(frozen=True, slots=True)
class ExtranonceChanged(Event):
    """``mining.set_extranonce``: applies to jobs received from now on."""

    extranonce1: bytes
    extranonce2_size: int


@dataclass(frozen=True, slots=True)
class ReconnectRequested(Event):
    """``client.reconnect``: whether to follow (and to which host) is the shell's policy."""

    host: str | None
    port: int | None
    wait: float


@dataclass(frozen=True, slots=True)
class ShowMessage(Event):
    """``client.show_message`` text, control characters escaped."""

    text: str


@dataclass(frozen=True, slots=True)
class ShareAccepted(Event):
    """The pool accepted a share; ``late`` means after we had reported it timed out."""

    request_id: int
    job_id: str
    latency: float
    late: bool = False


@dataclass(frozen=True, slots=True)
class ShareRejected(Event):
    """The pool rejected a share.

    ``code`` is the raw code (None if the pool sent only text); ``kind`` the category,
    inferred from the reason when the code is missing or unknown.
    """

    request_id: int
    job_id: str
    code: int | None
    kind: SubmitErrorCode
    reason: str
    latency: float
    late: bool = False


@dataclass(frozen=True, slots=True)
class SubmitTimedOut(Event):
    """No reply to a share within the submit timeout (or the outstanding table overflowed)."""

    request_id: int
    job_id: str
    waited: float


@dataclass(frozen=True, slots=True)
class RequestTimedOut(Event):
    """``mining.subscribe`` or ``mining.authorize`` went unanswered: the pool is not working."""

    method: str
    request_id: int
    waited: float


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """An optional request (suggest_difficulty, extranonce.subscribe) was refused; harmless."""

    method: str
    request_id: int
    error: StratumError


@dataclass(frozen=True, slots=True)
class PoolSilent(Event):
    """Nothing arrived for ``idle`` seconds: the connection is probably a zombie."""

    idle: float


@dataclass(frozen=True, slots=True)
class ProtocolViolation(Event):
    """Something the pool sent was wrong but not fatal; it was ignored."""

    description: str


Output = Event | Action
"""One element of what every session call returns."""
