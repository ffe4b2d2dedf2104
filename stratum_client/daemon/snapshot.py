"""The daemon at one instant, and the one line that sums it up.

A :class:`DaemonSnapshot` is what the status line, the demo summary and the APIs read;
:func:`status_line` is what ``systemctl status`` (``STATUS=``) and the demo print.
"""

from __future__ import annotations

from dataclasses import dataclass

from stratum_client.daemon.chain import ChainStatus
from stratum_client.daemon.dispatcher import DispatchSnapshot
from stratum_client.pool.types import PoolStatus

__all__ = ["DaemonSnapshot", "format_hashrate", "status_line"]


@dataclass(frozen=True, slots=True)
class DaemonSnapshot:
    """Everything the status line, the demo summary and the APIs show, at one instant."""

    uptime: float
    stopping: bool
    pools: tuple[PoolStatus, ...]
    dispatch: DispatchSnapshot
    chains: tuple[ChainStatus, ...]
    unavailable: tuple[tuple[str, str], ...]
    """Chains whose driver could not be loaded, with why."""


def status_line(snap: DaemonSnapshot) -> str:
    """One line for ``systemctl status`` and the demo: pool, share counts, hashrate."""
    d = snap.dispatch
    pool = "no pool"
    if d.active_pool is not None:
        name = next((p.name for p in d.pools if p.index == d.active_pool), "?")
        pool = f"pool {name}" if d.session_up else f"pool {name} (down)"
    running = sum(1 for c in snap.chains if c.state == "running")
    return (
        f"{pool}: {d.accepted} accepted, {d.rejected} rejected, "
        f"{d.total.shares.stale} stale, {d.lost} lost, {format_hashrate(d.total.hashrate.m1)}, "
        f"{running}/{len(snap.chains)} chains"
    )


def format_hashrate(hashes_per_second: float) -> str:
    for unit, scale in (("TH/s", 1e12), ("GH/s", 1e9), ("MH/s", 1e6), ("kH/s", 1e3)):
        if hashes_per_second >= scale:
            return f"{hashes_per_second / scale:.2f} {unit}"
    return f"{hashes_per_second:.0f} H/s"
