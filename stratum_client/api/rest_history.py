"""History samples from snapshots: what the REST shell stores each minute, without I/O.

Series take AxeOS statistics names where one exists (so ``/api/system/statistics`` reads
them directly) and our own otherwise; a series is only present when the daemon knows it
(``asicTemp`` once a chain reports a temperature, ``power`` once there is a power figure),
and every board reading becomes ``metric{label=value,...}``.
"""

from __future__ import annotations

from stratum_client.api import rest
from stratum_client.api.model import MinerState
from stratum_client.history.sample import Sample, reading_key

__all__ = ["sample_of", "statistics_row"]


def sample_of(state: MinerState) -> Sample:
    """The series one snapshot gives (GH/s, counts since start, W, °C, J/TH)."""
    info = rest.system_info(state)
    ghs = float(state.hashrate.m1) / 1e9
    active = state.active_pool
    series: dict[str, float] = {
        "hashrate": ghs,
        "hashrate_1m": ghs,
        "errorPercentage": float(info["errorPercentage"]),  # type: ignore[arg-type]
        "accepted": float(state.accepted),
        "rejected": float(state.rejected),
        "stale": float(state.stale),
        "bestDiff": float(state.best_share),
        "pool": float(active.index if active else -1),
        "chipsAlive": float(sum(device.chips_alive for device in state.devices)),
    }
    if any(device.temperature_c is not None for device in state.devices):
        series["asicTemp"] = float(info["temp"])  # type: ignore[arg-type]
    if any(device.voltage_v is not None for device in state.devices):
        series["asicVoltage"] = float(info["coreVoltageActual"])  # type: ignore[arg-type]
    power = float(info["power"])  # type: ignore[arg-type]
    if state.power_w is not None or any(d.power_w is not None for d in state.devices):
        series["power"] = power
        if ghs > 0:
            series["jPerTh"] = power / (ghs / 1000.0)
    for reading in state.readings:
        series[reading_key(reading.metric, reading.labels)] = float(reading.value)
    return Sample(state.when, series)


def statistics_row(sample: Sample) -> tuple[float, ...]:
    """The sample in :data:`~stratum_client.api.rest.STAT_LABELS` order (0 if absent)."""
    return tuple(sample.series.get(label, 0.0) for label in rest.STAT_LABELS)
