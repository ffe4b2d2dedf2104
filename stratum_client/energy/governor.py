"""The energy governor: signals in, per-device run/pause and frequency decisions out.

Sans-IO and deterministic: :meth:`Governor.step` takes the time and the signal board and
returns a :class:`Decision` (the data types live in :mod:`stratum_client.energy.policy`
and are re-exported here); the daemon applies it (frequency through the driver's ramp,
pause by stopping work dispatch). Rules, in precedence order:

1. A condition known to be false pauses at once (carbon or price above threshold,
   surplus too small for the device's minimum frequency). Stopping is never delayed:
   running on dirty power to honour a timer would defeat the point.
2. A condition that cannot be evaluated (missing, stale or garbage signal) engages the
   fail-safe: ``pause`` (default), ``run`` (treat as allowed) or ``hold-last`` (keep the
   last known verdict / state; a governor with no history pauses).
3. Otherwise the device runs; in surplus mode at the highest frequency whose modelled
   power fits its share of the surplus.

Against flapping: thresholds have a hysteresis margin (resume only at ``threshold −
margin``, or with ``margin_w`` of surplus to spare; frequency rises need the same margin,
falls happen whenever the draw no longer fits); a paused device restarts no sooner than
``min_dwell`` after it stopped and after it last started, so run/pause cycles happen at
most once per dwell; frequency increases happen at most once per ``control_interval``.
Against the feedback loop of a grid meter (its reading includes the miners): when the
surplus is "net of miner", the miners' own draw is added back, and every increase waits
for a surplus reading taken after the last change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stratum_client.energy.policy import (
    FAIL_SAFES,
    MODES,
    Decision,
    DeviceDecision,
    FailSafe,
    Mode,
    Policy,
    SurplusPolicy,
    ThresholdPolicy,
)
from stratum_client.energy.power import DevicePower
from stratum_client.energy.signals import (
    CARBON_INTENSITY,
    GRID_IMPORT,
    PRICE,
    SURPLUS,
    SignalBoard,
)

__all__ = [
    "FAIL_SAFES",
    "MODES",
    "Decision",
    "DeviceDecision",
    "FailSafe",
    "Governor",
    "Mode",
    "Policy",
    "SurplusPolicy",
    "ThresholdPolicy",
]


@dataclass(frozen=True, slots=True)
class _Verdict:
    allow: bool | None
    """None: unknown (signal unusable)."""
    reason: str


@dataclass(frozen=True, slots=True)
class _Want:
    run: bool
    frequency: float | None
    reason: str


@dataclass(slots=True)
class _Gate:
    """A threshold condition with a hysteresis latch (the last known verdict)."""

    label: str
    signal: str
    unit: str
    policy: ThresholdPolicy
    open: bool = False

    def evaluate(self, now: float, signals: SignalBoard) -> _Verdict:
        value = signals.value(self.signal, now)
        if value is None:
            return _Verdict(None, signals.problem(self.signal, now) or self.signal)
        limit, resume = self.policy.threshold, self.policy.threshold - self.policy.margin
        if value > limit:
            self.open = False
        elif value <= resume:
            self.open = True
        shown = f"{self.label} {value:g} {self.unit}"
        if self.open:
            return _Verdict(True, f"{shown} ≤ {limit:g}")
        if value > limit:
            return _Verdict(False, f"{shown} > {limit:g}")
        return _Verdict(False, f"{shown} not yet ≤ {resume:g} (hysteresis)")


@dataclass(slots=True)
class _Device:
    power: DevicePower
    measured_signal: str | None
    run: bool = False
    frequency: float | None = None
    last_start: float = -math.inf
    last_stop: float = -math.inf
    last_raise: float = -math.inf
    last_change: float = -math.inf
    offset_w: float = 0.0
    """Learnt measured − modelled draw while running (board overhead, model error)."""


@dataclass(frozen=True, slots=True)
class _Surplus:
    available: float | None
    reason: str
    fresh: bool
    """A reading newer than the last change exists, so increases are safe."""


class Governor:
    """Decides, every control interval, which devices run and how fast."""

    def __init__(
        self,
        policy: Policy,
        devices: Sequence[DevicePower],
        power_signals: Mapping[str, str] | None = None,
    ) -> None:
        if "always" in policy.modes and len(policy.modes) > 1:
            raise ValueError("mode 'always' cannot be combined with other modes")
        signals = power_signals or {}
        self.policy = policy
        by_efficiency = sorted(devices, key=lambda d: (d.joules_per_terahash(d.max_mhz), d.name))
        self._devices = {d.name: _Device(d, signals.get(d.name)) for d in by_efficiency}
        self._gates = self._build_gates(policy)
        self._first = True

    @staticmethod
    def _build_gates(policy: Policy) -> list[_Gate]:
        gates = []
        if "carbon" in policy.modes and policy.carbon is not None:
            gates.append(_Gate("carbon intensity", CARBON_INTENSITY, "g/kWh", policy.carbon))
        if "price" in policy.modes and policy.price is not None:
            gates.append(_Gate("price", PRICE, "/kWh", policy.price))
        return gates

    @property
    def device_names(self) -> tuple[str, ...]:
        """Devices in allocation order (most efficient first)."""
        return tuple(self._devices)

    def step(self, now: float, signals: SignalBoard) -> Decision:
        """Evaluate every condition at ``now`` and move each device toward its target."""
        self._learn(now, signals)
        verdicts = [gate.evaluate(now, signals) for gate in self._gates]
        surplus = self._surplus(now, signals) if "surplus" in self.policy.modes else None
        unknown = [v.reason for v in verdicts if v.allow is None]
        if surplus is not None and surplus.available is None:
            unknown.append(surplus.reason)
        wants = self._wants(now, verdicts, surplus, unknown)
        reasons = {name: self._apply(name, want, now) for name, want in wants.items()}
        changed = [name for name, (moved, _) in reasons.items() if moved or self._first]
        self._first = False
        return Decision(
            at=now,
            mode=self.policy.label,
            per_device={n: self._report(n, why, now, signals) for n, (_, why) in reasons.items()},
            changed=tuple(changed),
            fail_safe_engaged=bool(unknown),
            fail_safe_reason=self._fail_safe_reason(unknown),
            surplus_w=None if surplus is None else surplus.available,
            carbon_intensity=signals.value(CARBON_INTENSITY, now),
        )

    def _fail_safe_reason(self, unknown: list[str]) -> str | None:
        return f"fail-safe {self.policy.fail_safe}: " + "; ".join(unknown) if unknown else None

    # ------------------------------------------------------------------ targets

    def _wants(
        self, now: float, verdicts: list[_Verdict], surplus: _Surplus | None, unknown: list[str]
    ) -> dict[str, _Want]:
        refused = [v.reason for v in verdicts if v.allow is False]
        if refused:
            return self._all(False, "paused: " + "; ".join(refused))
        if unknown:
            imposed = self._fail_safe(verdicts, surplus, "; ".join(unknown))
            if imposed is not None:
                return imposed
        if surplus is None:
            why = ", ".join(v.reason for v in verdicts if v.allow) or self.policy.label
            label = self._fail_safe_reason(unknown) or f"running: {why}"
            return self._all(True, label)
        return self._allocate(now, surplus)

    def _fail_safe(
        self, verdicts: list[_Verdict], surplus: _Surplus | None, why: str
    ) -> dict[str, _Want] | None:
        """What the fail-safe imposes, or None to go on as if the unknown allowed it."""
        failing = self.policy.fail_safe
        label = f"fail-safe {failing}: {why}"
        if failing == "pause":
            return self._all(False, label)
        gates_unknown = any(v.allow is None for v in verdicts)
        if failing == "hold-last" and gates_unknown and not all(g.open for g in self._gates):
            return self._all(False, f"{label} (last verdict: pause)")
        if surplus is None or surplus.available is not None:
            return None
        if failing == "run":
            return self._all(True, label)
        return {name: _Want(dev.run, dev.frequency, label) for name, dev in self._devices.items()}

    def _all(self, run: bool, reason: str) -> dict[str, _Want]:
        return {
            name: _Want(run, dev.power.max_mhz if run else None, reason)
            for name, dev in self._devices.items()
        }

    def _allocate(self, now: float, surplus: _Surplus) -> dict[str, _Want]:
        """Share the surplus, most efficient device first; idle draw is reserved up front."""
        idle = sum(dev.power.idle_watts for dev in self._devices.values())
        budget = (surplus.available or 0.0) - self.policy.surplus.reserve_w - idle
        wants: dict[str, _Want] = {}
        for name, dev in self._devices.items():
            own = budget + dev.power.idle_watts  # running replaces this device's idle draw
            if not dev.run and not self._may_start(dev, now):
                want = _Want(False, None, self._held_reason(dev, now, "if surplus allows"))
            else:
                want = self._fit(dev, own, surplus.fresh, now)
            if want.run and want.frequency is not None:
                budget = own - dev.power.watts(want.frequency) - dev.offset_w
            wants[name] = want
        return wants

    def _fit(self, dev: _Device, budget: float, fresh: bool, now: float) -> _Want:
        margin = self.policy.surplus.margin_w
        floor = dev.power.watts(dev.power.min_mhz) + dev.offset_w
        if not dev.run:
            start = dev.power.max_frequency_for(budget - margin, dev.offset_w)
            if start is None:
                needed = floor + margin
                return _Want(False, None, f"paused: surplus {budget:.1f} W < {needed:.1f} W")
            if not fresh:
                return _Want(False, None, "paused: waiting for a surplus reading after a change")
            return _Want(True, start, self._surplus_reason(dev, budget, start))
        fits = dev.power.max_frequency_for(budget, dev.offset_w)
        current = dev.frequency or dev.power.max_mhz
        if fits is None:
            return _Want(False, None, f"paused: surplus {budget:.1f} W < {floor:.1f} W")
        if fits < current:
            return _Want(True, fits, self._surplus_reason(dev, budget, fits))
        higher = dev.power.max_frequency_for(budget - margin, dev.offset_w)
        may_raise = fresh and now - dev.last_raise >= self.policy.control_interval
        target = higher if may_raise and higher is not None and higher > current else current
        return _Want(True, target, self._surplus_reason(dev, budget, target))

    @staticmethod
    def _surplus_reason(dev: _Device, budget: float, mhz: float) -> str:
        return f"surplus {budget:.1f} W: {mhz:g} MHz ≈ {dev.power.watts(mhz):.1f} W"

    def _surplus(self, now: float, signals: SignalBoard) -> _Surplus:
        """Net surplus from export and import signals (+ own draw when net of miner)."""
        total, problems, fresh = 0.0, [], True
        last_change = max(dev.last_change for dev in self._devices.values())
        for name, sign in ((SURPLUS, 1.0), (GRID_IMPORT, -1.0)):
            if not signals.configured(name):
                continue
            value = signals.value(name, now)
            if value is None:
                problems.append(signals.problem(name, now) or name)
                continue
            total += sign * value
            taken = signals.updated_at(name)
            fresh = fresh and taken is not None and taken > last_change
        if problems or not any(signals.configured(n) for n in (SURPLUS, GRID_IMPORT)):
            return _Surplus(None, "; ".join(problems) or "no surplus signal configured", False)
        if self.policy.surplus.net_of_miner:
            total += sum(self._draw(dev, now, signals)[0] for dev in self._devices.values())
        return _Surplus(total, "", fresh)

    # ------------------------------------------------------------------ state

    def _apply(self, name: str, want: _Want, now: float) -> tuple[bool, str]:
        """Move one device toward ``want`` within the dwell; (changed?, reason)."""
        dev = self._devices[name]
        if want.run and not dev.run and not self._may_start(dev, now):
            return False, self._held_reason(dev, now, want.reason)
        before = (dev.run, dev.frequency)
        if want.run and not dev.run:
            dev.last_start = dev.last_raise = now
        elif dev.run and not want.run:
            dev.last_stop = now
        elif want.run and dev.frequency is not None and (want.frequency or 0) > dev.frequency:
            dev.last_raise = now
        dev.run, dev.frequency = want.run, want.frequency if want.run else None
        if (dev.run, dev.frequency) == before:
            return False, want.reason
        dev.last_change = now
        return True, want.reason

    def _may_start(self, dev: _Device, now: float) -> bool:
        dwell = self.policy.min_dwell
        return now - dev.last_stop >= dwell and now - dev.last_start >= dwell

    def _held_reason(self, dev: _Device, now: float, wanted: str) -> str:
        wait = self.policy.min_dwell - min(now - dev.last_stop, now - dev.last_start)
        return f"paused: dwell, may resume in {max(wait, 0.0):.0f} s (then {wanted})"

    def _learn(self, now: float, signals: SignalBoard) -> None:
        """Track measured − modelled draw of running devices, from readings after a change."""
        for dev in self._devices.values():
            if not (dev.run and dev.frequency and dev.measured_signal):
                continue
            measured = signals.value(dev.measured_signal, now)
            taken = signals.updated_at(dev.measured_signal)
            if measured is None or taken is None or taken <= dev.last_change:
                continue
            modelled = dev.power.watts(dev.frequency)
            dev.offset_w = min(max(measured - modelled, -0.5 * modelled), modelled)

    def _draw(self, dev: _Device, now: float, signals: SignalBoard) -> tuple[float, bool]:
        """Current draw, and whether measured: a reading taken since the last change wins."""
        name = dev.measured_signal
        measured = signals.value(name, now) if name else None
        taken = signals.updated_at(name) if name else None
        if measured is not None and taken is not None and taken > dev.last_change:
            return measured, True
        if dev.run and dev.frequency:
            return dev.power.watts(dev.frequency) + dev.offset_w, False
        return dev.power.idle_watts, False

    def _report(self, name: str, reason: str, now: float, signals: SignalBoard) -> DeviceDecision:
        dev = self._devices[name]
        watts, measured = self._draw(dev, now, signals)
        return DeviceDecision(dev.run, dev.frequency, reason, watts, measured)
