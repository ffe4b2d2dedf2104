"""Energy intervals: power samples in, one ledger row per device per interval out.

:class:`IntervalAccumulator` is sans-IO: it integrates the power samples it is given
(time passed in, wall-clock seconds) into fixed intervals aligned to multiples of the
interval length, splitting each one into surplus-sourced and grid-sourced energy.
Integration is **left-Riemann (sample and hold)**: a sample's power holds until the next
sample. The governor changes power in steps, at the instants it decides, so holding is
exact for modelled power, where a trapezoid would smear every step over a whole sample
gap. A sample is held for at most ``max_hold`` seconds, so a stalled daemon does not
bill a frozen reading for hours.

Split rule: at every instant the miners together draw ``P`` and the surplus available to
them is ``S``; ``min(P, S)`` is surplus-sourced, the rest comes from the grid, shared
between devices in proportion to their draw. Grid energy × carbon intensity gives grams
of CO2; surplus energy is counted at ``surplus_g_per_kwh`` (0 by default). The rows are
stored by :class:`stratum_client.energy.ledger.Ledger`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stratum_client.energy.power import PowerSample

__all__ = ["HASHES_PER_DIFFICULTY", "JOULES_PER_KWH", "IntervalAccumulator", "LedgerRow"]

HASHES_PER_DIFFICULTY = 2**32
"""Expected hashes per nonce at difficulty 1."""
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One device over one interval (times are Unix seconds)."""

    start: float
    end: float
    device: str
    energy_kwh: float
    surplus_kwh: float
    grid_kwh: float
    carbon_g: float
    carbon_unknown_kwh: float
    """Grid energy drawn while no carbon intensity was known (not in ``carbon_g``)."""
    measured_kwh: float
    """Part of ``energy_kwh`` from a power reading rather than the model."""
    run_s: float
    shares: int
    share_difficulty: float
    """Sum of the accepted shares' pool difficulty."""
    hashes: float
    """Nonces × ticket difficulty × 2³²: the work the chips did."""
    mode: str
    reason: str


@dataclass(slots=True)
class _Sums:
    energy: float = 0.0
    surplus: float = 0.0
    grid: float = 0.0
    carbon: float = 0.0
    carbon_unknown: float = 0.0
    measured: float = 0.0
    run_s: float = 0.0
    shares: int = 0
    share_difficulty: float = 0.0
    hashes: float = 0.0
    reason: str = ""


class IntervalAccumulator:
    """Integrates power samples into ledger rows; sans-IO (time is an argument)."""

    def __init__(
        self,
        *,
        interval: float = 60.0,
        mode: str = "",
        surplus_g_per_kwh: float = 0.0,
        default_grid_g_per_kwh: float | None = None,
        max_hold: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.mode = mode
        self.surplus_g_per_kwh = surplus_g_per_kwh
        self.default_grid_g_per_kwh = default_grid_g_per_kwh
        self.max_hold = interval if max_hold is None else max_hold
        self._start: float | None = None
        self._end = math.inf
        self._last: float | None = None
        self._held: Mapping[str, PowerSample] = {}
        self._surplus: float | None = None
        self._intensity: float | None = None
        self._sums: dict[str, _Sums] = {}

    def sample(
        self,
        now: float,
        devices: Mapping[str, PowerSample],
        surplus_w: float | None,
        intensity_g_per_kwh: float | None,
    ) -> list[LedgerRow]:
        """Integrate the previous sample up to ``now``; return rows of intervals that closed."""
        rows: list[LedgerRow] = []
        if self._last is None:
            self._begin(self._floor(now), first=now)
        elif now < self._last:
            rows = self._emit(self._last)
            self._begin(self._floor(now), first=now)
        else:
            rows = self._advance(now)
        self._last = now
        self._held, self._surplus, self._intensity = dict(devices), surplus_w, intensity_g_per_kwh
        for name, sample in devices.items():
            self._sums.setdefault(name, _Sums()).reason = sample.reason
        return rows

    def nonce(self, device: str, ticket_difficulty: float, count: int = 1) -> None:
        """Count verified nonces: the work done, independent of pool difficulty."""
        self._sums.setdefault(device, _Sums()).hashes += (
            count * ticket_difficulty * HASHES_PER_DIFFICULTY
        )

    def share(self, device: str, difficulty: float) -> None:
        """Count one share the pool accepted."""
        self.shares(device, 1, difficulty)

    def shares(self, device: str, count: int, difficulty_sum: float) -> None:
        """Count ``count`` accepted shares at once (the daemon reads counters, not events)."""
        sums = self._sums.setdefault(device, _Sums())
        sums.shares += count
        sums.share_difficulty += difficulty_sum

    def close(self, now: float) -> list[LedgerRow]:
        """Integrate up to ``now`` and return every open row (shutdown)."""
        if self._last is None:
            return []
        rows = self._advance(max(now, self._last))
        rows += self._emit(max(now, self._last))
        self._last, self._start = None, None
        return rows

    def _floor(self, t: float) -> float:
        return math.floor(t / self.interval) * self.interval

    def _begin(self, boundary: float, first: float | None = None) -> None:
        self._start = boundary if first is None else first
        self._end = boundary + self.interval
        self._sums = {name: _Sums(reason=s.reason) for name, s in self._sums.items()}

    def _advance(self, now: float) -> list[LedgerRow]:
        rows: list[LedgerRow] = []
        assert self._last is not None
        t, hold_end = self._last, self._last + self.max_hold
        while now >= self._end:
            self._integrate(t, min(self._end, hold_end))
            rows += self._emit(self._end)
            t = self._end
            self._begin(self._end if hold_end > self._end else self._floor(now))
        self._integrate(t, min(now, hold_end))
        return rows

    def _integrate(self, t0: float, t1: float) -> None:
        seconds = t1 - t0
        if seconds <= 0 or not self._held:
            return
        watts = {name: max(sample.watts, 0.0) for name, sample in self._held.items()}
        total = sum(watts.values())
        clean = min(total, max(self._surplus or 0.0, 0.0))
        clean_share = clean / total if total > 0 else 0.0
        intensity = self._intensity if self._intensity is not None else self.default_grid_g_per_kwh
        for name, sample in self._held.items():
            sums = self._sums.setdefault(name, _Sums())
            energy = watts[name] * seconds  # a negative reading (sign mix-up) counts as 0
            surplus = energy * clean_share
            grid = energy - surplus
            sums.energy += energy
            sums.surplus += surplus
            sums.grid += grid
            sums.carbon += surplus / JOULES_PER_KWH * self.surplus_g_per_kwh
            if intensity is None:
                sums.carbon_unknown += grid
            else:
                sums.carbon += grid / JOULES_PER_KWH * intensity
            sums.measured += energy if sample.measured else 0.0
            sums.run_s += seconds if sample.running else 0.0

    def _emit(self, end: float) -> list[LedgerRow]:
        start = self._start if self._start is not None else end
        counted = any(s.shares or s.hashes for s in self._sums.values())
        if end <= start and not counted:
            return []
        end = max(end, start)
        return [
            LedgerRow(
                start=start,
                end=end,
                device=name,
                energy_kwh=s.energy / JOULES_PER_KWH,
                surplus_kwh=s.surplus / JOULES_PER_KWH,
                grid_kwh=s.grid / JOULES_PER_KWH,
                carbon_g=s.carbon,
                carbon_unknown_kwh=s.carbon_unknown / JOULES_PER_KWH,
                measured_kwh=s.measured / JOULES_PER_KWH,
                run_s=s.run_s,
                shares=s.shares,
                share_difficulty=s.share_difficulty,
                hashes=s.hashes,
                mode=self.mode,
                reason=s.reason,
            )
            for name, s in sorted(self._sums.items())
        ]
