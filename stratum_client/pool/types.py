"""The contract between the pool manager and whoever consumes pool work (the dispatcher).

The manager owns connections and sessions; the dispatcher owns work and shares. They talk
only through these records, so either side can be tested alone: the dispatcher with
hand-made events, the manager with a local pool and a list as its sink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stratum_client.protocol import events as ev
from stratum_client.work.job import Job

__all__ = [
    "ManagerEvent",
    "PoolDown",
    "PoolStatus",
    "PoolUp",
    "SessionEvent",
    "Share",
    "ShareOutcome",
    "ShareUnanswered",
    "Sink",
]


@dataclass(frozen=True, slots=True)
class Share:
    """A hash-checked share, ready for ``mining.submit`` on the pool that issued its job."""

    pool: int
    """Index of the pool (in config order) whose job this is."""
    job: Job
    extranonce2: bytes
    ntime: int
    nonce: int
    version_bits: int
    difficulty: float
    """Share difficulty of the hash (for stats and diff-weighted counters)."""
    block: bool
    """The hash also meets the network target: a block candidate."""
    device: str
    chip: int
    found_at: float

    @property
    def key(self) -> tuple[str, bytes, int, int, int]:
        """What makes two shares the same share to a pool."""
        return (self.job.job_id, self.extranonce2, self.ntime, self.nonce, self.version_bits)


@dataclass(frozen=True, slots=True)
class PoolUp:
    """A session on ``pool`` is subscribed and authorized: shares may be submitted."""

    pool: int
    name: str
    extranonce1: bytes
    extranonce2_size: int
    resumed: bool
    """The pool kept our previous session (same extranonce1): earlier jobs may be valid."""
    at: float
    submit_block_candidates_below_difficulty: bool = True
    """The pool's setting: submit a block candidate that misses the pool target."""


@dataclass(frozen=True, slots=True)
class PoolDown:
    """The session on ``pool`` ended (connection lost, silence, protocol error, switch)."""

    pool: int
    name: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A session event the dispatcher cares about (NewJob, DifficultyChanged, …)."""

    pool: int
    event: ev.Event


@dataclass(frozen=True, slots=True)
class ShareOutcome:
    """The pool's verdict on a submitted share."""

    share: Share
    accepted: bool
    code: int | None
    reason: str
    latency: float | None


@dataclass(frozen=True, slots=True)
class ShareUnanswered:
    """A submitted share whose reply never came (connection lost, timeout).

    The dispatcher decides whether to submit it again after reconnecting.
    """

    share: Share
    reason: str


ManagerEvent = PoolUp | PoolDown | SessionEvent | ShareOutcome | ShareUnanswered
Sink = Callable[[ManagerEvent], None]


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """What the APIs show about one configured pool."""

    index: int
    name: str
    url: str
    user: str
    state: str
    """``active``, ``connecting``, ``standby``, ``failed`` or ``disabled``."""
    priority: int
    difficulty: float | None
    accepted: int
    rejected: int
    stale: int
    connects: int
    failures: int
    last_error: str
    version_mask: int
