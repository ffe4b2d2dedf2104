"""``/api/dashboard``: one snapshot shaped for the web page, without I/O.

The page needs more than AxeOS shows: each pool's state (failover), each chain's and
each chip's health, the 10-minute and 1-hour hashrate (means of the per-minute history,
since the daemon's meter keeps 1/5/15 minutes), and the energy ledger's ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stratum_client.api.model import DeviceState, MinerState
from stratum_client.api.rest import format_difficulty
from stratum_client.history.sample import Sample

if TYPE_CHECKING:
    from stratum_client.energy.ledger import Totals  # sqlite3 stays out of this core

__all__ = ["dashboard_summary", "mean_hashrate"]

GH = 1e9


def mean_hashrate(samples: Sequence[Sample], since: float) -> float | None:
    """Mean of the per-minute GH/s samples at or after ``since``; None if there are none."""
    values = [s.series["hashrate"] for s in samples if s.when >= since and "hashrate" in s.series]
    return sum(values) / len(values) if values else None


def dashboard_summary(
    state: MinerState, recent: Sequence[Sample], energy: Totals | None
) -> dict[str, object]:
    """Everything the page shows except the charts and the log."""
    return {
        "hostname": state.hostname,
        "version": state.version,
        "when": state.when,
        "uptime": state.elapsed,
        "mining": state.mining.value,
        "pauseReason": state.pause_reason,
        "hashrate": {
            "1m": state.hashrate.m1 / GH,
            "10m": mean_hashrate(recent, state.when - 600),
            "1h": mean_hashrate(recent, state.when - 3600),
        },
        "shares": {
            "accepted": state.accepted,
            "rejected": state.rejected,
            "stale": state.stale,
            "reasons": [{"reason": r, "count": n} for r, n in state.rejected_reasons],
        },
        "bestShare": format_difficulty(state.best_share),
        "bestShareValue": state.best_share,
        "blocksFound": state.found_blocks,
        "pools": [_pool(state, index) for index in range(len(state.pools))],
        "chains": [_chain(device) for device in state.devices],
        "energy": _energy(energy),
        "readings": [
            {"metric": r.metric, "labels": dict(r.labels), "value": r.value} for r in state.readings
        ],
    }


def _pool(state: MinerState, index: int) -> dict[str, object]:
    pool = state.pools[index]
    return {
        "index": pool.index,
        "name": pool.name,
        "url": pool.url,
        "user": pool.user,
        "state": pool.state,
        "priority": pool.priority,
        "difficulty": pool.difficulty,
        "accepted": pool.accepted,
        "rejected": pool.rejected,
        "stale": pool.stale,
        "failures": pool.failures,
        "lastError": pool.last_error,
    }


def _chain(device: DeviceState) -> dict[str, object]:
    return {
        "name": device.name,
        "model": device.model,
        "status": device.status.value,
        "chips": device.chips,
        "chipsAlive": device.chips_alive,
        "frequency": device.frequency_mhz,
        "hashrate": device.hashrate.m1 / GH,
        "accepted": device.accepted,
        "rejected": device.rejected,
        "hwErrors": device.hw_errors,
        "temperature": device.temperature_c,
        "power": device.power_w,
        "chipList": [
            {
                "index": chip.index,
                "nonces": chip.nonces,
                "hwErrors": chip.hw_errors,
                "alive": chip.alive,
                "lastNonceAge": chip.last_nonce_age,
            }
            for chip in device.chip_counters
        ],
    }


def _energy(totals: Totals | None) -> dict[str, object] | None:
    if totals is None or totals.intervals == 0:
        return None
    return {
        "since": totals.first_start,
        "energyKwh": totals.energy_kwh,
        "surplusKwh": totals.surplus_kwh,
        "gridKwh": totals.grid_kwh,
        "cleanPct": totals.clean_pct,
        "jPerTh": totals.j_per_th,
        "gPerTh": totals.g_per_th,
        "carbonG": totals.carbon_g,
    }
