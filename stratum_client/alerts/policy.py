"""When to alert: stats observations and notices in, alerts out, each once per condition.

Pure: the service hands in an :class:`Observation` (built from a daemon snapshot) with
``now`` on the daemon's clock, and the notices the daemon announces; nothing here reads
a clock or does I/O. A condition alerts when it starts (or has lasted its threshold)
and not again until it has ended (a reject rate ends when it falls to half its
threshold, so a rate hovering at the threshold is one alert, not a stream): a pool that
stays down is one alert, a pool that goes down, comes back and goes down again is two.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from stratum_client.alerts.config import AlertsConfig

__all__ = [
    "Alert",
    "AlertPolicy",
    "ChainView",
    "Observation",
    "PoolView",
    "SafeStateCleared",
    "SafeStateEntered",
]


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing to tell the operator; ``details`` become fields in the webhook body."""

    kind: str
    """One of :data:`~stratum_client.alerts.config.ALERT_KINDS`."""
    title: str
    message: str
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SafeStateEntered:
    """Announced (``Daemon.announce``) by the boards layer when a board goes to its safe
    state (power cut, fans full) because a limit was crossed or a sensor was lost."""

    board: str
    reason: str


@dataclass(frozen=True, slots=True)
class SafeStateCleared:
    """The board left its safe state: a later entry alerts again."""

    board: str


@dataclass(frozen=True, slots=True)
class PoolView:
    name: str
    down: bool
    """Connecting or failed (a standby or disabled pool is not down)."""
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class ChainView:
    name: str
    nonces: int
    """Nonces received so far: progress is this number growing."""
    paused: bool
    """Held paused on purpose (energy governor, a command): not dead."""
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """What the policy needs from one daemon snapshot."""

    blocks_found: int
    accepted: int
    rejected: int
    pools: tuple[PoolView, ...] = ()
    chains: tuple[ChainView, ...] = ()
    has_work: bool = True
    """A pool session is up, so chains are expected to hash; without one a silent chain
    is idle, not dead (the pool-down alert covers it)."""


@dataclass(slots=True)
class _Chain:
    nonces: int
    since: float
    """When the chain last made progress (or was paused, or first seen)."""
    alerted: bool = False


@dataclass(slots=True)
class AlertPolicy:
    """Remembers which conditions hold, so each alerts once."""

    config: AlertsConfig
    _blocks: int = 0
    _pool_down_since: dict[str, float] = field(default_factory=dict)
    _pools_alerted: set[str] = field(default_factory=set)
    _chains: dict[str, _Chain] = field(default_factory=dict)
    _shares: deque[tuple[float, int, int]] = field(default_factory=deque)
    _rejecting: bool = False
    _safe: set[str] = field(default_factory=set)

    def observe(self, seen: Observation, now: float) -> list[Alert]:
        """Alerts for conditions that began (or crossed their threshold) by ``now``."""
        return [
            *self._blocks_found(seen),
            *self._pools_down(seen.pools, now),
            *self._chains_dead(seen.chains, now, idle=not seen.has_work),
            *self._rejected_rate(seen, now),
        ]

    def on_notice(self, notice: object) -> list[Alert]:
        """Alerts for a notice the daemon announced (other notices give none)."""
        if isinstance(notice, SafeStateEntered) and notice.board not in self._safe:
            self._safe.add(notice.board)
            return [
                Alert(
                    "safe_state",
                    f"board {notice.board} entered its safe state",
                    notice.reason,
                    (("board", notice.board), ("reason", notice.reason)),
                )
            ]
        if isinstance(notice, SafeStateCleared):
            self._safe.discard(notice.board)
        return []

    def _blocks_found(self, seen: Observation) -> list[Alert]:
        new = seen.blocks_found - self._blocks
        self._blocks = max(self._blocks, seen.blocks_found)
        if new <= 0:
            return []
        message = f"{new} share(s) met the network target; the pool decides if it is a block"
        details = (("candidates", str(new)), ("this run", str(seen.blocks_found)))
        return [Alert("block_found", "block candidate found", message, details)]

    def _pools_down(self, pools: tuple[PoolView, ...], now: float) -> list[Alert]:
        alerts = []
        for pool in pools:
            if not pool.down:
                self._pool_down_since.pop(pool.name, None)
                self._pools_alerted.discard(pool.name)
                continue
            since = self._pool_down_since.setdefault(pool.name, now)
            lasted = now - since
            if lasted >= self.config.pool_down_after and pool.name not in self._pools_alerted:
                self._pools_alerted.add(pool.name)
                details: tuple[tuple[str, str], ...] = (
                    ("pool", pool.name),
                    ("down for", f"{lasted:.0f} s"),
                )
                if pool.last_error:
                    details += (("last error", pool.last_error),)
                message = f"pool {pool.name} has been down for {lasted:.0f} s"
                alerts.append(Alert("pool_down", f"pool {pool.name} down", message, details))
        return alerts

    def _chains_dead(self, chains: tuple[ChainView, ...], now: float, *, idle: bool) -> list[Alert]:
        """``idle``: no pool work, so silence is expected (the clocks restart)."""
        alerts = []
        for chain in chains:
            known = self._chains.get(chain.name)
            if known is None:
                self._chains[chain.name] = _Chain(chain.nonces, now)
                continue
            if idle or chain.paused or chain.nonces != known.nonces:
                known.nonces, known.since = chain.nonces, now
                known.alerted = known.alerted and (chain.paused or idle)  # progress re-arms
                continue
            silent = now - known.since
            if silent >= self.config.chain_dead_after and not known.alerted:
                known.alerted = True
                details: tuple[tuple[str, str], ...] = (
                    ("chain", chain.name),
                    ("silent for", f"{silent:.0f} s"),
                )
                if chain.last_error:
                    details += (("last error", chain.last_error),)
                message = f"chain {chain.name} has sent no nonce for {silent:.0f} s"
                alerts.append(Alert("chain_dead", f"chain {chain.name} dead", message, details))
        return alerts

    def _rejected_rate(self, seen: Observation, now: float) -> list[Alert]:
        self._shares.append((now, seen.accepted, seen.rejected))
        while len(self._shares) > 1 and self._shares[1][0] <= now - self.config.rejected_window:
            self._shares.popleft()
        _, accepted0, rejected0 = self._shares[0]
        rejected = seen.rejected - rejected0
        answered = seen.accepted - accepted0 + rejected
        if answered < self.config.rejected_min_shares:
            return []
        percent = 100.0 * rejected / answered
        if percent <= self.config.rejected_percent / 2:
            self._rejecting = False  # well below: a later rise is a new condition
        if percent <= self.config.rejected_percent or self._rejecting:
            return []
        self._rejecting = True
        message = (
            f"{percent:.1f}% of the last {answered} answered shares were rejected "
            f"(alert above {self.config.rejected_percent:g}%)"
        )
        details = (("rejected", str(rejected)), ("answered", str(answered)))
        return [Alert("rejected_rate", "high share reject rate", message, details)]
