"""Which pool to use next and when: ordered failover that does not flap.

Pure policy: no I/O and no clock. The pool manager reports what happened (an attempt
failed, a session came up or ended, a probe of a higher-priority pool succeeded) together
with the time, and asks what to do next. Keeping the rules here lets them be tested with
a fake clock and a seeded random generator, which is where failover bugs hide: miners that
never return to the primary, or that bounce between pools whenever the primary blinks.

The rules, in short (``docs/pools.md`` has the long form):

* Pools are tried in config order. A pool is left after ``failures_before_switch``
  consecutive failures (connect, TLS, handshake, silence, or a session that died before
  it was ``stable_after`` seconds old), or at once when it refuses our credentials. The
  next enabled pool follows, wrapping around.
* Each pool has its own decorrelated-jitter backoff between ``backoff_initial`` and
  ``backoff_max``; a session that lived ``stable_after`` seconds resets it.
* While a lower-priority pool is in use, every enabled pool above it is probed each
  ``primary_probe_interval`` seconds. Probe successes build a healthy streak, any failure
  ends it; the manager moves back once a streak is ``return_to_primary_after`` long.
* Probes only sample, so a primary that blinks in step with the probe interval can look
  healthy. If a pool we returned to fails over again within ``return_to_primary_after``
  (or ``stable_after``) seconds, the streak it needs next time doubles, up to
  ``MAX_RETURN_FACTOR`` times; a long healthy stay resets it.
* A pool chosen by hand (:meth:`FailoverPolicy.switch_to`) is kept: no probing and no
  automatic return until that pool fails over by itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum

from stratum_client.backoff import Backoff
from stratum_client.config import PoolPolicy

__all__ = [
    "FAILURES_BEFORE_SWITCH",
    "MAX_RETURN_FACTOR",
    "STABLE_SESSION",
    "Attempt",
    "Ending",
    "FailoverPolicy",
]

FAILURES_BEFORE_SWITCH = 2
"""Consecutive failures on a pool before moving to the next one."""
STABLE_SESSION = 30.0
"""Seconds an authorized session must last to count as healthy (and reset the backoff)."""
MAX_RETURN_FACTOR = 16
"""Most a returning pool's required healthy streak grows after returns that failed fast."""


class Ending(Enum):
    """How a connection attempt or session ended, as far as failover cares."""

    FAILED = "failed"
    """Connect, TLS or handshake failed, or the connection dropped before authorization."""
    REFUSED = "refused"
    """The pool refused subscribe or authorize: retrying soon will not help."""
    LOST = "lost"
    """An authorized session dropped (reset, EOF, protocol error)."""
    SILENT = "silent"
    """Nothing arrived for ``silence_timeout``: always a failure, however old the session."""
    RECONNECT = "reconnect"
    """The pool asked us to reconnect (``client.reconnect``) and we agreed."""
    LEFT = "left"
    """We left on purpose (switch, return to primary, disable, reload, shutdown)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """Connect to ``pool`` after waiting ``delay`` seconds."""

    pool: int
    delay: float


@dataclass(slots=True)
class _PoolHealth:
    backoff: Backoff
    """Decorrelated-jitter pauses between failed attempts; reset by a healthy session."""
    enabled: bool = True
    failures: int = 0
    """Consecutive failures counted towards leaving this pool."""
    retry_at: float = -math.inf
    up_since: float | None = None
    streak_since: float | None = None
    """When the current run of successful probes began."""
    probing: bool = False
    returned_at: float | None = None
    """When we last moved back to this pool after probing it."""
    return_factor: int = 1
    """Multiplier on ``return_to_primary_after`` (grows when returns fail fast)."""


class FailoverPolicy:
    """Ordered failover over ``pool_count`` pools (index 0 has the highest priority)."""

    def __init__(
        self,
        pool_count: int,
        policy: PoolPolicy,
        rng: random.Random,
        *,
        failures_before_switch: int = FAILURES_BEFORE_SWITCH,
        stable_after: float = STABLE_SESSION,
    ) -> None:
        if pool_count < 1:
            raise ValueError("FailoverPolicy needs at least one pool")
        if failures_before_switch < 1:
            raise ValueError("failures_before_switch must be at least 1")
        self._policy = policy
        self._rng = rng
        self._threshold = failures_before_switch
        self._stable_after = stable_after
        self._pools = [self._new_health() for _ in range(pool_count)]
        self._current: int | None = 0
        self._pinned = False
        self._next_probe_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"FailoverPolicy(pools={len(self._pools)}, current={self._current}, "
            f"pinned={self._pinned})"
        )

    # -- reading ----------------------------------------------------------------------

    @property
    def current(self) -> int | None:
        """The pool to use (None when every pool is disabled)."""
        return self._current

    @property
    def pinned(self) -> bool:
        """A pool was chosen by hand: no probing, no automatic return."""
        return self._pinned

    @property
    def pool_count(self) -> int:
        return len(self._pools)

    def is_enabled(self, index: int) -> bool:
        return self._pools[index].enabled

    def failures(self, index: int) -> int:
        """Consecutive failures of a pool since it last worked or was chosen."""
        return self._pools[index].failures

    def next_attempt(self, now: float) -> Attempt | None:
        """The pool to connect to and how long to wait first; None if all are disabled."""
        if self._current is None:
            return None
        health = self._pools[self._current]
        return Attempt(self._current, max(0.0, health.retry_at - now))

    # -- what happened on the main connection -----------------------------------------

    def session_up(self, index: int, now: float) -> None:
        """A session on ``index`` is subscribed and authorized."""
        self._pools[index].up_since = now

    def session_ended(self, index: int, now: float, ending: Ending, *, wait: float = 0.0) -> None:
        """Account for the end of an attempt or session; may move to the next pool.

        ``wait`` is the (already capped) delay a ``client.reconnect`` asked for.
        """
        health = self._pools[index]
        healthy = health.up_since is not None and now - health.up_since >= self._stable_after
        health.up_since = None
        if ending is Ending.LEFT:
            return
        if ending is Ending.RECONNECT and healthy:
            self._reset(health)
            health.retry_at = now + wait
        elif ending is Ending.LOST and healthy:
            self._reset(health)
            health.return_factor = 1
            # a jittered pause, so a restarted pool is not stampeded by all its miners
            health.retry_at = now + self._rng.uniform(0.0, self._policy.backoff_initial)
        else:  # a short-lived redirect counts too, so a redirect loop backs off and moves on
            self._fail(index, now, hard=ending is Ending.REFUSED, at_least=wait)

    # -- choices made by people (API, reload) -----------------------------------------

    def switch_to(self, index: int, now: float, *, pinned: bool = True) -> None:
        """Use ``index`` now (enabling it); a hand-picked lower pool stays until it fails."""
        health = self._pools[index]
        health.enabled = True
        health.failures = 0
        health.retry_at = now
        self._pinned = pinned and index != self._first_enabled()
        self._move(index, now)

    def set_enabled(self, index: int, enabled: bool, now: float) -> None:
        """Enable or disable a pool; disabling the current one moves to the next."""
        health = self._pools[index]
        health.enabled = enabled
        health.streak_since = None
        if enabled and self._current is None:
            health.failures = 0
            self._move(index, now)
        elif not enabled and index == self._current:
            self._pinned = False
            following = self._next_enabled(index)
            if following is None:
                self._current = None
                self._next_probe_at = None
            else:
                self._pools[following].failures = 0
                self._move(following, now)
        else:
            self._schedule_probes(now)

    def add_pool(self) -> int:
        """Append a pool at the lowest priority; returns its index."""
        self._pools.append(self._new_health())
        return len(self._pools) - 1

    # -- probing higher-priority pools -------------------------------------------------

    def next_probe_in(self, now: float) -> float | None:
        """Seconds until probes are due; None while nothing needs probing."""
        if self._next_probe_at is None:
            return None
        return max(0.0, self._next_probe_at - now)

    def probes_due(self, now: float) -> list[int]:
        """Pools to probe now (each marked busy until :meth:`probe_finished`)."""
        if self._next_probe_at is None or now < self._next_probe_at:
            return []
        self._next_probe_at = now + self._policy.primary_probe_interval
        due = [i for i in self._higher() if not self._pools[i].probing]
        for index in due:
            self._pools[index].probing = True
        return due

    def probe_finished(self, index: int, ok: bool, now: float) -> int | None:
        """Record a probe; returns the pool to move back to once a streak is long enough.

        The policy has then already made it current; the manager only has to leave.
        """
        health = self._pools[index]
        health.probing = False
        if not ok:
            health.streak_since = None
            return None
        if health.streak_since is None:
            health.streak_since = now
        ready = [i for i in self._higher() if self._streak_long_enough(i, now)]
        if not ready:
            return None
        target = min(ready)
        returning = self._pools[target]
        returning.failures = 0
        returning.backoff.reset()
        returning.retry_at = now
        returning.returned_at = now
        self._move(target, now)
        return target

    def required_streak(self, index: int) -> float:
        """Seconds of successful probes ``index`` needs before we move back to it."""
        return self._policy.return_to_primary_after * self._pools[index].return_factor

    # -- internals ----------------------------------------------------------------------

    def _fail(self, index: int, now: float, *, hard: bool, at_least: float) -> None:
        health = self._pools[index]
        health.failures = self._threshold if hard else health.failures + 1
        health.retry_at = now + max(health.backoff.next(), at_least)
        health.streak_since = None
        if index == self._current and health.failures >= self._threshold:
            self._judge_return(health, now)
            self._pinned = False
            following = self._next_enabled(index)
            if following is None:
                following = index  # the only pool: it simply gets another round
            self._pools[following].failures = 0
            self._move(following, now)

    def _judge_return(self, health: _PoolHealth, now: float) -> None:
        """Leaving a pool: if we came back to it only moments ago, trust probes less."""
        if health.returned_at is None:
            return
        window = max(self._policy.return_to_primary_after, self._stable_after)
        if now - health.returned_at < window:
            health.return_factor = min(health.return_factor * 2, MAX_RETURN_FACTOR)
        else:
            health.return_factor = 1
        health.returned_at = None

    def _streak_long_enough(self, index: int, now: float) -> bool:
        since = self._pools[index].streak_since
        return since is not None and now - since >= self.required_streak(index)

    def _new_health(self) -> _PoolHealth:
        policy = self._policy
        # one seeded source replays a whole failover run, pauses included
        pauses = Backoff(
            policy.backoff_initial, policy.backoff_max, "decorrelated", random=self._rng.random
        )
        return _PoolHealth(pauses)

    def _reset(self, health: _PoolHealth) -> None:
        health.failures = 0
        health.backoff.reset()

    def _move(self, index: int, now: float) -> None:
        """Make ``index`` current; streaks measured against the old pool no longer count."""
        self._current = index
        for health in self._pools:
            health.streak_since = None
        self._schedule_probes(now)

    def _schedule_probes(self, now: float) -> None:
        if not self._higher():
            self._next_probe_at = None
        elif self._next_probe_at is None:
            self._next_probe_at = now + self._policy.primary_probe_interval

    def _higher(self) -> list[int]:
        """Enabled pools ranked above the current one (none while pinned)."""
        if self._current is None or self._pinned:
            return []
        return [i for i in range(self._current) if self._pools[i].enabled]

    def _first_enabled(self) -> int | None:
        return next((i for i, h in enumerate(self._pools) if h.enabled), None)

    def _next_enabled(self, index: int) -> int | None:
        """The next enabled pool after ``index`` in wrap-around order, not ``index``."""
        count = len(self._pools)
        for step in range(1, count):
            candidate = (index + step) % count
            if self._pools[candidate].enabled:
                return candidate
        return None
