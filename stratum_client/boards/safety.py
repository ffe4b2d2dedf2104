"""The board safety policy, pure: readings and ``now`` in, actions out.

One :class:`SafetyPolicy` watches one board. Each poll it is given the board's
:class:`~stratum_client.boards.base.BoardReadings` and returns what to do:

* **Fan**: a PID holds the ASIC at ``target_asic_c`` (or the configured fixed duty).
* **Throttle**: at or above ``warn_asic_c`` (or ``warn_vr_c``) the frequency steps down by
  ``frequency_step_mhz`` every ``throttle_interval_s``; below the warning minus
  ``throttle_hysteresis_c`` it steps back up, one step per ``restore_interval_s``.
* **Safe state** on any of: ASIC ≥ ``critical_asic_c``; regulator ≥ ``critical_vr_c``; a
  regulator fault bit; ``bad_readings_limit`` polls in a row with a required sensor failed,
  missing or implausible; or the tach reading 0 while the fan is driven, with the last
  spinning reading ``stall_s`` old. The actions: stop dispatch, core voltage off, reset
  asserted, fan 100 %.
* **Recovery** once every reading has been good and below the critical thresholds minus
  ``hysteresis_c`` (fan spinning) for ``dwell_s``, and the safe state itself is that old;
  at most ``max_recoveries_per_hour`` in any hour, after which the board stays off
  (:attr:`BoardState.LOCKED_OUT`) until the daemon restarts. A safe state caused only by
  the control channel vanishing (an unplug) recovers after ``relink_dwell_s`` of good, cool
  readings, at the same frequency and outside the hourly count; one hot reading while off
  makes it an ordinary safe state again.

Every change of state comes out as a :class:`Transition`, and :attr:`SafetyPolicy.snapshot`
is what telemetry publishes.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from .base import BoardReadings, Sensor
from .pid import FanPid, PidGains

__all__ = [
    "Action",
    "BoardState",
    "EnterSafeState",
    "Recover",
    "SafetyConfig",
    "SafetyPolicy",
    "SafetySnapshot",
    "SetFan",
    "SetFrequency",
    "StayOff",
    "Transition",
]

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """The policy's thresholds and timings (``[devices.safety]`` overrides any of them)."""

    poll_interval_s: float = 1.0
    target_asic_c: float = 60.0
    warn_asic_c: float = 70.0
    critical_asic_c: float = 75.0
    warn_vr_c: float = 95.0
    critical_vr_c: float = 105.0
    hysteresis_c: float = 10.0
    dwell_s: float = 30.0
    max_recoveries_per_hour: int = 3
    bad_readings_limit: int = 3
    stall_s: float = 5.0
    min_plausible_c: float = -20.0
    max_plausible_c: float = 120.0
    min_fan_pct: float = 25.0
    start_fan_pct: float = 70.0
    frequency_step_mhz: float = 25.0
    throttle_interval_s: float = 5.0
    throttle_hysteresis_c: float = 5.0
    restore_interval_s: float = 30.0
    relink_dwell_s: float = 2.0
    kp: float = 5.0
    ki: float = 0.1
    kd: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value):
                raise ValueError(f"safety.{f.name} must be finite, got {value}")
        if not self.target_asic_c < self.warn_asic_c < self.critical_asic_c:
            raise ValueError("safety: target_asic_c < warn_asic_c < critical_asic_c must hold")
        if not self.warn_vr_c < self.critical_vr_c:
            raise ValueError("safety: warn_vr_c < critical_vr_c must hold")
        if self.bad_readings_limit < 1 or self.max_recoveries_per_hour < 0:
            raise ValueError("safety: bad_readings_limit ≥ 1 and max_recoveries_per_hour ≥ 0")
        if not 0 <= self.min_fan_pct <= self.start_fan_pct <= 100:
            raise ValueError("safety: 0 ≤ min_fan_pct ≤ start_fan_pct ≤ 100 must hold")


class BoardState(enum.StrEnum):
    MINING = "mining"
    THROTTLED = "throttled"
    """Mining at a reduced frequency because a warning threshold was reached."""
    SAFE = "safe"
    """Core voltage off, reset asserted, fan 100 %, dispatch stopped; may recover."""
    LOCKED_OUT = "locked_out"
    """Safe state for good: too many recoveries within an hour."""


@dataclass(frozen=True, slots=True)
class SetFan:
    percent: float


@dataclass(frozen=True, slots=True)
class SetFrequency:
    """Ask the daemon to ramp the board's chains to ``mhz`` (through the chip driver)."""

    mhz: float
    reason: str


@dataclass(frozen=True, slots=True)
class EnterSafeState:
    """Stop dispatch to the board, then core voltage off, reset asserted, fan 100 %."""

    reason: str


@dataclass(frozen=True, slots=True)
class Recover:
    """Power the board up again (full sequence), restart its chains, resume dispatch."""

    reason: str
    frequency_mhz: float | None


@dataclass(frozen=True, slots=True)
class StayOff:
    """Recovery refused: the board stays in the safe state and says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of :class:`BoardState`: a structured log event and a telemetry state."""

    old: BoardState
    new: BoardState
    reason: str
    at: float


Action = SetFan | SetFrequency | EnterSafeState | Recover | StayOff | Transition


@dataclass(frozen=True, slots=True)
class SafetySnapshot:
    """What telemetry and the APIs show about a board's safety loop."""

    state: BoardState
    reason: str
    since: float
    bad_readings: int
    safe_entries: int
    recoveries_last_hour: int
    frequency_mhz: float | None
    fan_percent: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "reason": self.reason,
            "since": self.since,
            "bad_readings": self.bad_readings,
            "safe_entries": self.safe_entries,
            "recoveries_last_hour": self.recoveries_last_hour,
            "frequency_mhz": self.frequency_mhz,
            "fan_percent": self.fan_percent,
        }


class SafetyPolicy:
    """The rules for one board; call :meth:`step` once per poll with the readings."""

    def __init__(
        self,
        config: SafetyConfig,
        sensors: frozenset[Sensor],
        now: float,
        *,
        frequency_mhz: float | None = None,
        min_frequency_mhz: float | None = None,
        fixed_fan_pct: float | None = None,
    ) -> None:
        self.config = config
        self.sensors = sensors
        self.nominal_mhz = frequency_mhz
        self.min_mhz = min_frequency_mhz if min_frequency_mhz is not None else frequency_mhz
        self.fixed_fan = fixed_fan_pct
        gains = PidGains(config.kp, config.ki, config.kd)
        self.pid = FanPid(config.target_asic_c, gains=gains, minimum=config.min_fan_pct,
                          start=config.start_fan_pct)  # fmt: skip
        self.state = BoardState.MINING
        self.reason = "started"
        self.since = now
        self.frequency_mhz = frequency_mhz
        self.fan_pct: float | None = None
        self.bad_readings = 0
        self.safe_entries = 0
        self.recoveries: deque[float] = deque()
        self._spinning_at = now
        self._cool_since: float | None = None
        self._unplugged = False
        self._last_throttle = -math.inf
        self._now = now

    # -- public -------------------------------------------------------------------------

    @property
    def snapshot(self) -> SafetySnapshot:
        self._forget_old_recoveries(self._now)
        return SafetySnapshot(
            state=self.state,
            reason=self.reason,
            since=self.since,
            bad_readings=self.bad_readings,
            safe_entries=self.safe_entries,
            recoveries_last_hour=len(self.recoveries),
            frequency_mhz=self.frequency_mhz,
            fan_percent=self.fan_pct,
        )

    @property
    def off(self) -> bool:
        """Whether the board should be in the safe state now."""
        return self.state in (BoardState.SAFE, BoardState.LOCKED_OUT)

    def step(self, readings: BoardReadings, now: float) -> list[Action]:
        """Apply every rule to one poll's readings."""
        self._now = now
        problems = self.problems(readings)
        self.bad_readings = self.bad_readings + 1 if problems else 0
        if self.off:
            return self._while_off(readings, problems, now)
        trip = self._trip_reason(readings, problems, now)
        if trip is not None:
            return self._enter_safe(trip, now, unplugged=readings.link_lost)
        return self._fan(readings, now) + self._throttle(readings, now)

    def fail(self, reason: str, now: float, *, unplugged: bool = False) -> list[Action]:
        """Something went wrong outside the rules (an exception, a failed write): safe
        state at once; ``unplugged`` when the cause was the control channel vanishing."""
        self._now = now
        if self.off:
            self._cool_since = None
            return [EnterSafeState(reason)]
        return self._enter_safe(reason, now, unplugged=unplugged)

    def hold_fan(self, percent: float | None) -> None:
        """A fixed duty from the user (the PID off), or None: the PID drives the fan again,
        starting from the duty it has now. The safe state still runs the fan at 100 %."""
        self.fixed_fan = percent
        if percent is None:
            self.pid.reset(self.fan_pct if self.fan_pct is not None else self.config.start_fan_pct)
        elif not self.off:
            self.fan_pct = percent

    # -- rules --------------------------------------------------------------------------

    def problems(self, readings: BoardReadings) -> list[str]:
        """Why this poll is a bad reading: required sensors failed, missing, implausible."""
        found = []
        for sensor in sorted(self.sensors):
            if sensor is Sensor.ASIC_TEMP and readings.settling:
                continue
            reading = readings.reading(sensor)
            if reading.error is not None:
                found.append(f"{sensor}: {reading.error}")
            elif reading.value is None:
                found.append(f"{sensor}: no value")
            elif sensor in (Sensor.ASIC_TEMP, Sensor.VR_TEMP):
                value = reading.value
                assert isinstance(value, float | int)
                if not self.config.min_plausible_c <= value <= self.config.max_plausible_c:
                    found.append(f"{sensor}: implausible {value:g} °C")
        return found

    def _trip_reason(self, readings: BoardReadings, problems: list[str], now: float) -> str | None:
        cfg = self.config
        if self.bad_readings >= cfg.bad_readings_limit:
            return f"{self.bad_readings} bad readings in a row: {'; '.join(problems)}"
        asic, vr = _good(readings.asic_temp_c.value), _good(readings.vr_temp_c.value)
        asic_counts = asic is not None and not readings.settling
        if asic_counts and cfg.critical_asic_c <= (asic or 0.0) <= cfg.max_plausible_c:
            return f"ASIC at {asic:g} °C (critical {cfg.critical_asic_c:g})"
        if vr is not None and cfg.critical_vr_c <= vr <= cfg.max_plausible_c:
            return f"regulator at {vr:g} °C (critical {cfg.critical_vr_c:g})"
        if Sensor.FAULTS in self.sensors and readings.faults.ok and readings.faults.value:
            return f"regulator fault: {', '.join(readings.faults.value)}"
        return self._stall(readings, now)

    def _stall(self, readings: BoardReadings, now: float) -> str | None:
        if Sensor.FAN_RPM not in self.sensors or not readings.fan_rpm.ok:
            return None
        if (readings.fan_rpm.value or 0) > 0 or not self._fan_driven(readings):
            self._spinning_at = now
            return None
        if now - self._spinning_at >= self.config.stall_s:
            return f"fan stalled: tach 0 RPM while driven, {now - self._spinning_at:.1f} s"
        return None

    def _fan_driven(self, readings: BoardReadings) -> bool:
        duty = readings.fan_duty_pct.value if readings.fan_duty_pct.ok else self.fan_pct
        return duty is None or duty > 0

    def _fan(self, readings: BoardReadings, now: float) -> list[Action]:
        if self.fixed_fan is not None:
            wanted = self.fixed_fan
        elif readings.asic_temp_c.ok and not readings.settling:
            wanted = self.pid.update(float(readings.asic_temp_c.value or 0.0), now)
        elif readings.settling:
            return []
        else:
            wanted = 100.0  # no valid ASIC temperature: cool as hard as possible
        wanted = round(wanted, 1)
        if self.fan_pct is not None and abs(wanted - self.fan_pct) < 1.0:
            return []
        self.fan_pct = wanted
        return [SetFan(wanted)]

    def _hot(self, readings: BoardReadings, margin: float) -> bool:
        cfg = self.config
        asic, vr = _good(readings.asic_temp_c.value), _good(readings.vr_temp_c.value)
        asic_hot = asic is not None and not readings.settling and asic >= cfg.warn_asic_c - margin
        return asic_hot or (vr is not None and vr >= cfg.warn_vr_c - margin)

    def _throttle(self, readings: BoardReadings, now: float) -> list[Action]:
        cfg, current = self.config, self.frequency_mhz
        if current is None or self.nominal_mhz is None or self.min_mhz is None:
            return []
        if self._hot(readings, 0.0):
            if now - self._last_throttle < cfg.throttle_interval_s or current <= self.min_mhz:
                return []
            return self._retune(max(self.min_mhz, current - cfg.frequency_step_mhz), now, "hot")
        if current >= self.nominal_mhz or self._hot(readings, cfg.throttle_hysteresis_c):
            return []
        if now - self._last_throttle < cfg.restore_interval_s:
            return []
        return self._retune(min(self.nominal_mhz, current + cfg.frequency_step_mhz), now, "cool")

    def _retune(self, mhz: float, now: float, why: str) -> list[Action]:
        self._last_throttle = now
        self.frequency_mhz = mhz
        actions: list[Action] = [SetFrequency(mhz, f"{why}: frequency to {mhz:g} MHz")]
        new = BoardState.MINING if mhz >= (self.nominal_mhz or mhz) else BoardState.THROTTLED
        if new is not self.state:
            actions.append(self._transition(new, f"{why}: {mhz:g} MHz", now))
        return actions

    # -- safe state and recovery ---------------------------------------------------------

    def _transition(self, new: BoardState, reason: str, now: float) -> Transition:
        old, self.state, self.reason, self.since = self.state, new, reason, now
        return Transition(old, new, reason, now)

    def _enter_safe(self, reason: str, now: float, *, unplugged: bool = False) -> list[Action]:
        self.safe_entries += 1
        self._unplugged = unplugged
        self._cool_since = None
        self.fan_pct = 100.0
        return [self._transition(BoardState.SAFE, reason, now), EnterSafeState(reason)]

    def _cool(self, readings: BoardReadings, problems: list[str]) -> bool:
        cfg = self.config
        if problems:
            return False
        asic, vr = _good(readings.asic_temp_c.value), _good(readings.vr_temp_c.value)
        if asic is not None and asic >= cfg.critical_asic_c - cfg.hysteresis_c:
            return False
        if vr is not None and vr >= cfg.critical_vr_c - cfg.hysteresis_c:
            return False
        if Sensor.FAULTS in self.sensors and readings.faults.value:
            return False
        return Sensor.FAN_RPM not in self.sensors or (readings.fan_rpm.value or 0) > 0

    def _while_off(self, readings: BoardReadings, problems: list[str], now: float) -> list[Action]:
        if self.state is BoardState.LOCKED_OUT:
            return []
        if not self._cool(readings, problems):
            self._cool_since = None
            self._unplugged = self._unplugged and bool(problems)  # hot: a real safe state
            return []
        if self._cool_since is None:
            self._cool_since = now
        dwell = self.config.relink_dwell_s if self._unplugged else self.config.dwell_s
        if now - self._cool_since < dwell or now - self.since < dwell:
            return []
        self._forget_old_recoveries(now)
        limit = self.config.max_recoveries_per_hour
        if not self._unplugged and len(self.recoveries) >= limit:
            count = len(self.recoveries)
            reason = f"stays off: {count} recoveries in the last hour (limit {limit})"
            return [self._transition(BoardState.LOCKED_OUT, reason, now), StayOff(reason)]
        return self._recover(now)

    def _recover(self, now: float) -> list[Action]:
        unplugged, self._unplugged = self._unplugged, False
        self.bad_readings = 0
        self._spinning_at = now
        self._cool_since = None
        self._last_throttle = now
        if not unplugged:
            self.recoveries.append(now)
        if not unplugged and self.frequency_mhz is not None and self.min_mhz is not None:
            lower = self.frequency_mhz - self.config.frequency_step_mhz
            self.frequency_mhz = max(self.min_mhz, lower)
        self.pid.reset(self.config.start_fan_pct)
        self.fan_pct = None
        throttled = self.frequency_mhz is not None and self.frequency_mhz < (self.nominal_mhz or 0)
        new = BoardState.THROTTLED if throttled else BoardState.MINING
        why = "control channel back" if unplugged else f"cooled for {self.config.dwell_s:g} s"
        reason = f"{why} after: {self.reason}"
        return [self._transition(new, reason, now), Recover(reason, self.frequency_mhz)]

    def _forget_old_recoveries(self, now: float) -> None:
        while self.recoveries and now - self.recoveries[0] >= HOUR:
            self.recoveries.popleft()


def _good(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
