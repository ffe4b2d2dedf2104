"""A first-order thermal model of one Bitaxe: power in, fan and ambient out (pure).

The ASIC node relaxes towards ``ambient + R(duty) × P`` with time constant ``tau``, where
R falls linearly from ``r_still`` (fan stopped) to ``r_full`` (fan at 100 %). The
regulator is a second, faster node driven by its conduction loss (``r_vr × IOUT``). The
step is exact for inputs held constant over the interval, so calling it once per control
request is as good as integrating finely. The chip power scales with frequency and the
square of the core voltage from the board's nominal point. None of this comes from a
datasheet: the numbers are chosen so a fan PID settles near 60 °C at 25 °C ambient and a
stalled fan overheats the ASIC within a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ThermalModel", "ThermalParams", "chip_power"]


@dataclass(frozen=True, slots=True)
class ThermalParams:
    ambient_c: float = 25.0
    tau_s: float = 30.0
    r_full: float = 1.2
    """K/W from the ASIC to ambient with the fan at 100 %."""
    r_still: float = 5.0
    """K/W with the fan stopped."""
    tau_vr_s: float = 10.0
    r_vr: float = 2.0
    """K per A of output current for the regulator."""


def chip_power(
    nominal_w: float, nominal_mhz: float, nominal_v: float, *, mhz: float, volts: float,
    running: bool,
) -> float:  # fmt: skip
    """Watts drawn from the core rail: ~1 W idle when powered, dynamic power when running."""
    if volts <= 0:
        return 0.0
    idle = 1.0 * (volts / nominal_v) ** 2
    if not running:
        return idle
    return idle + nominal_w * (mhz / nominal_mhz) * (volts / nominal_v) ** 2


class ThermalModel:
    """Temperatures of the ASIC and regulator; :meth:`step` with the inputs since last."""

    def __init__(self, params: ThermalParams, now: float) -> None:
        self.params = params
        self.ambient_c = params.ambient_c
        self.asic_c = params.ambient_c
        self.vr_c = params.ambient_c
        self.ramp_c_per_s = 0.0
        self.ramp_limit_c = params.ambient_c
        self.peak_asic_c = self.asic_c
        self._last = now

    def ramp_ambient(self, c_per_s: float, limit_c: float) -> None:
        """Let the ambient temperature change at ``c_per_s`` until it reaches ``limit_c``."""
        self.ramp_c_per_s = c_per_s
        self.ramp_limit_c = limit_c

    def resistance(self, fan_pct: float) -> float:
        p = self.params
        fraction = min(1.0, max(0.0, fan_pct / 100.0))
        return p.r_still + (p.r_full - p.r_still) * fraction

    def step(self, now: float, power_w: float, iout_a: float, fan_pct: float) -> None:
        """Advance to ``now`` with the power, current and effective fan duty held."""
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        self._move_ambient(dt)
        p = self.params
        asic_eq = self.ambient_c + self.resistance(fan_pct) * power_w
        vr_eq = self.ambient_c + p.r_vr * iout_a
        self.asic_c = asic_eq + (self.asic_c - asic_eq) * math.exp(-dt / p.tau_s)
        self.vr_c = vr_eq + (self.vr_c - vr_eq) * math.exp(-dt / p.tau_vr_s)
        self.peak_asic_c = max(self.peak_asic_c, self.asic_c)

    def _move_ambient(self, dt: float) -> None:
        if self.ramp_c_per_s == 0:
            return
        moved = self.ambient_c + self.ramp_c_per_s * dt
        if self.ramp_c_per_s > 0:
            self.ambient_c = min(moved, self.ramp_limit_c)
        else:
            self.ambient_c = max(moved, self.ramp_limit_c)
