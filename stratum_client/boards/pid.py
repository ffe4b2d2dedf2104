"""A fan PID that holds the ASIC at a target temperature (pure: temperatures and ``now`` in).

Reverse acting: a temperature above the target raises the duty. The gains are per second
(Kp 5 %/°C, Ki 0.1 %/(°C·s), Kd 2 %·s/°C by default, the gains the Bitaxe firmware uses at
its 100 ms step, converted to continuous time), so the loop behaves the same at any poll
interval. The integral starts at the start-up duty, so the first output is that duty
rather than a jump, and it is clamped to the output range (no wind-up while the fan is
already at 100 %). The derivative acts on the measurement, so a target change gives no kick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FanPid", "PidGains"]


@dataclass(frozen=True, slots=True)
class PidGains:
    kp: float = 5.0
    ki: float = 0.1
    kd: float = 2.0


class FanPid:
    """Duty in percent from ASIC temperatures; ``update`` once per poll."""

    def __init__(
        self,
        target_c: float,
        *,
        gains: PidGains | None = None,
        minimum: float = 25.0,
        maximum: float = 100.0,
        start: float = 70.0,
    ) -> None:
        if not minimum <= start <= maximum:
            raise ValueError(f"start duty {start} is outside {minimum}..{maximum}")
        self.target_c = target_c
        self.gains = gains or PidGains()
        self.minimum = minimum
        self.maximum = maximum
        self._integral = start
        self._last: tuple[float, float] | None = None
        self.output = start

    def _clamp(self, value: float) -> float:
        return min(self.maximum, max(self.minimum, value))

    def update(self, temperature_c: float, now: float) -> float:
        """The duty for this reading; a non-finite reading leaves the output unchanged."""
        if not math.isfinite(temperature_c):
            return self.output
        error = temperature_c - self.target_c
        slope = 0.0
        if self._last is not None:
            last_t, last_now = self._last
            dt = now - last_now
            if dt > 0:
                self._integral = self._clamp(self._integral + self.gains.ki * error * dt)
                slope = (temperature_c - last_t) / dt
        self._last = (temperature_c, now)
        self.output = self._clamp(self.gains.kp * error + self._integral + self.gains.kd * slope)
        return self.output

    def reset(self, start: float) -> None:
        """Forget the history (after a power-up) and start again from ``start``."""
        self._integral = self._clamp(start)
        self._last = None
        self.output = self._integral
