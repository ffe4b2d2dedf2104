"""What the dispatcher tells the daemon shell: the chains it feeds, actions, snapshots.

Plain frozen records, so the shell, the status line and the APIs can read them without
touching the dispatcher's state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stratum_client.daemon.stats import ShareCounts, WorkerSnapshot
from stratum_client.pool.types import Share
from stratum_client.work.builder import MIDSTATE_COUNTS

__all__ = [
    "Action",
    "ChainSpec",
    "DeviceSnapshot",
    "DispatchSnapshot",
    "FlushChains",
    "PoolSnapshot",
    "SetVersionMask",
    "SubmitShare",
]


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """One chain the dispatcher feeds.

    ``ticket_difficulty`` is the difficulty every nonce the chain reports meets (the
    driver's *effective* ticket, scale included): each nonce stands for that many times
    ``2**32`` hashes in the hashrate estimate.
    """

    name: str
    midstates: int
    """The driver's :attr:`~stratum_client.asic.base.AsicDriver.midstates`: 0, 1 or 4."""
    chips: int
    ticket_difficulty: float = 256.0

    def __post_init__(self) -> None:
        if self.midstates not in MIDSTATE_COUNTS:
            raise ValueError(f"chain {self.name!r}: midstates must be one of {MIDSTATE_COUNTS}")
        if self.chips < 1:
            raise ValueError(f"chain {self.name!r}: needs at least one chip")
        if not math.isfinite(self.ticket_difficulty) or self.ticket_difficulty <= 0:
            raise ValueError(f"chain {self.name!r}: ticket difficulty must be positive")


@dataclass(frozen=True, slots=True)
class SubmitShare:
    """Hand ``share`` to ``PoolManager.submit``; if it returns False call
    :meth:`Dispatcher.submit_refused`."""

    share: Share


@dataclass(frozen=True, slots=True)
class FlushChains:
    """Call ``flush_work`` on every chain and send fresh work at once."""


@dataclass(frozen=True, slots=True)
class SetVersionMask:
    """Program ``mask`` into every chain (full-header chips roll on-chip)."""

    mask: int


Action = SubmitShare | FlushChains | SetVersionMask


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One pool as the dispatcher sees it."""

    index: int
    name: str
    active: bool
    """This pool's jobs feed the chains."""
    session_up: bool
    difficulty: float | None
    """Share difficulty in force now (None before the first job)."""
    version_mask: int
    extranonce1: bytes | None
    jobs: int
    """Live jobs feeding the chains from this pool (0 unless it is the active pool)."""
    pending: int
    in_flight: int
    shares: ShareCounts


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One chain: totals and one entry per chip, in chain order."""

    name: str
    ticket_difficulty: float
    total: WorkerSnapshot
    chips: tuple[WorkerSnapshot, ...]


@dataclass(frozen=True, slots=True)
class DispatchSnapshot:
    """Everything the status line, the demo summary and the APIs read, at ``at``."""

    at: float
    active_pool: int | None
    session_up: bool
    current_difficulty: float | None
    version_mask: int | None
    """The mask last programmed into the chains (None: never set)."""
    job_count: int
    found_shares: int
    accepted: int
    rejected: int
    lost: int
    pending: int
    in_flight: int
    lost_by_reason: Mapping[str, int]
    blocks_found: int
    best_share: float
    exhausted_jobs: int
    """Jobs whose extranonce2 space ran out (they gave no more work)."""
    untracked_outcomes: int
    """Outcomes for shares this dispatcher did not have in flight (a manager bug)."""
    total: WorkerSnapshot
    pools: tuple[PoolSnapshot, ...]
    devices: tuple[DeviceSnapshot, ...]

    @property
    def balanced(self) -> bool:
        """The share ledger adds up: no found share vanished unaccounted."""
        ends = self.accepted + self.rejected + self.lost + self.pending + self.in_flight
        return self.found_shares == ends
