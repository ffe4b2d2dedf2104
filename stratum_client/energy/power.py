"""How much power a chain draws at a frequency, and the fastest frequency a budget allows.

The governor needs a number before the chips run (to decide whether a surplus is enough)
and the ledger needs one for every second they run; a smart plug gives a real reading
only sometimes, and never for a frequency not yet tried. So each device gets a model::

    P(f) = chips × (P_static + k × f × V²)        [W, f in MHz, V in volts]

CMOS dynamic power is ``C·V²·f``; ``P_static`` lumps leakage and the always-on parts.
``k`` is derived from two per-chip figures, the static watts and the watts at the
model's default frequency and voltage: ``k = (P_default − P_static) / (f_default ·
V_default²)``. Both come from the chip's driver (its ``facts``; the built-in figures and
their sources are in the BM13xx driver's ``chips`` module), so a plug-in chip gets a
power model the same way.

Boards vary by tens of percent, so both figures are overridable per device, and
:func:`calibrate` fits them from smart-plug readings at two or more frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from stratum_client.asic.facts import DEFAULT_RAMP_STEP_MHZ as RAMP_STEP_MHZ
from stratum_client.asic.registry import chip_facts, installed_drivers

__all__ = [
    "CHIP_POWER",
    "ChipPower",
    "DevicePower",
    "PowerSample",
    "calibrate",
    "chip_power",
]

_EPSILON_W = 1e-9


@dataclass(frozen=True, slots=True)
class ChipPower:
    """One chip model's power coefficients (per chip)."""

    model: str
    default_mhz: float
    default_mv: float
    small_cores: int
    """Hashes per clock per chip: GH/s = MHz × small_cores / 1000."""
    static_watts: float
    """Drawn regardless of frequency (leakage, I/O, PLLs)."""
    watts_at_default: float
    """Total per chip at ``default_mhz`` and ``default_mv``."""

    def __post_init__(self) -> None:
        if not 0 <= self.static_watts < self.watts_at_default:
            raise ValueError(
                f"{self.model}: static_watts ({self.static_watts:g}) must be >= 0 and below "
                f"watts_per_chip_at_default ({self.watts_at_default:g})"
            )

    @property
    def k(self) -> float:
        """Dynamic coefficient in W / (MHz · V²)."""
        volts = self.default_mv / 1000.0
        return (self.watts_at_default - self.static_watts) / (self.default_mhz * volts * volts)

    def watts(self, mhz: float, mv: float | None = None) -> float:
        """Per-chip power at ``mhz`` (and ``mv``, default voltage when unknown)."""
        volts = (self.default_mv if mv is None else mv) / 1000.0
        return self.static_watts + self.k * mhz * volts * volts


class _InstalledChips(Mapping[str, ChipPower]):
    """Power coefficients of every installed driver's chip that publishes them, by model."""

    def __getitem__(self, model: str) -> ChipPower:
        facts = chip_facts(model)
        if facts is None or facts.static_watts is None or facts.watts_at_default is None:
            raise KeyError(model)
        return ChipPower(
            facts.model,
            facts.default_mhz,
            facts.default_mv,
            facts.small_cores,
            facts.static_watts,
            facts.watts_at_default,
        )

    def _models(self) -> list[str]:
        found = {c.facts.model for c in installed_drivers() if c.facts and c.facts.has_power_model}
        return sorted(found)

    def __iter__(self) -> Iterator[str]:
        return iter(self._models())

    def __len__(self) -> int:
        return len(self._models())


CHIP_POWER: Mapping[str, ChipPower] = _InstalledChips()
"""Approximate, from each driver; override per device in ``[energy.devices]``."""


def chip_power(
    model: str, *, static_watts: float | None = None, watts_at_default: float | None = None
) -> ChipPower:
    """The coefficients of ``model`` with optional per-device overrides.

    Raises ``KeyError`` for an unknown model and ``ValueError`` for inconsistent figures.
    """
    base = CHIP_POWER[model.upper()]
    return ChipPower(
        base.model,
        base.default_mhz,
        base.default_mv,
        base.small_cores,
        base.static_watts if static_watts is None else static_watts,
        base.watts_at_default if watts_at_default is None else watts_at_default,
    )


@dataclass(frozen=True, slots=True)
class PowerSample:
    """One device's draw at an instant, as the governor saw it (ledger input)."""

    watts: float
    measured: bool = False
    """From a power signal (smart plug) rather than the model."""
    running: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DevicePower:
    """The power model of one chain, with the frequency range the governor may use."""

    name: str
    chip: ChipPower
    chips: int
    min_mhz: float
    """Below this the governor pauses instead of slowing further."""
    max_mhz: float
    """The configured operating point; never exceeded."""
    voltage_mv: float | None = None
    idle_watts: float = 0.0
    """Modelled draw while paused (0: the model covers the hash engine only)."""
    step_mhz: float = RAMP_STEP_MHZ

    def __post_init__(self) -> None:
        if self.chips < 1 or not 0 < self.min_mhz <= self.max_mhz:
            raise ValueError(
                f"{self.name}: need chips >= 1 and 0 < min_mhz <= max_mhz "
                f"(got {self.chips}, {self.min_mhz:g}, {self.max_mhz:g})"
            )

    def watts(self, mhz: float) -> float:
        """Modelled draw while hashing at ``mhz``."""
        return self.chips * self.chip.watts(mhz, self.voltage_mv)

    def frequencies(self) -> tuple[float, ...]:
        """Frequencies the governor may choose, ascending: the step grid plus ``max_mhz``."""
        first = math.ceil(self.min_mhz / self.step_mhz - 1e-9)
        last = math.floor(self.max_mhz / self.step_mhz + 1e-9)
        grid = [n * self.step_mhz for n in range(first, last + 1)]
        if not grid or grid[-1] < self.max_mhz - 1e-9:
            grid.append(self.max_mhz)
        return tuple(grid)

    def max_frequency_for(self, budget_w: float, offset_w: float = 0.0) -> float | None:
        """Highest allowed frequency whose draw (+ ``offset_w``) fits ``budget_w``, or None.

        Solved in closed form (the model is linear in f), then snapped down to the step
        grid and re-checked, so float rounding can never return an over-budget choice.
        """
        usable = budget_w - offset_w
        if usable < self.watts(self.min_mhz) - _EPSILON_W:
            return None
        if usable >= self.watts(self.max_mhz) - _EPSILON_W:
            return self.max_mhz
        volts = (self.chip.default_mv if self.voltage_mv is None else self.voltage_mv) / 1000.0
        exact = (usable / self.chips - self.chip.static_watts) / (self.chip.k * volts * volts)
        fitting = [f for f in self.frequencies() if f <= exact + 1e-9]
        while fitting and self.watts(fitting[-1]) > usable + _EPSILON_W:
            fitting.pop()
        return fitting[-1] if fitting else None

    def joules_per_terahash(self, mhz: float) -> float:
        """Modelled efficiency at ``mhz``: lower is better (used to order devices)."""
        terahash_per_s = mhz * self.chip.small_cores * self.chips / 1e6
        return self.watts(mhz) / terahash_per_s


def calibrate(readings: Sequence[tuple[float, float]], chips: int, chip: ChipPower) -> ChipPower:
    """Fit static and default-frequency watts from ``(mhz, measured watts)`` readings.

    A least-squares line through ``watts / chips`` against frequency, at the default
    voltage. Use readings taken at steady state, at least two distinct frequencies, with
    the board overhead either included in every reading (plug) or in none.
    """
    if len({mhz for mhz, _ in readings}) < 2:
        raise ValueError("calibration needs readings at two or more distinct frequencies")
    xs = [mhz for mhz, _ in readings]
    ys = [watts / chips for _, watts in readings]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    intercept = max(0.0, mean_y - slope * mean_x)
    at_default = intercept + slope * chip.default_mhz
    return ChipPower(
        chip.model, chip.default_mhz, chip.default_mv, chip.small_cores, intercept, at_default
    )
