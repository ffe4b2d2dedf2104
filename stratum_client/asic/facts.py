"""What the rest of the daemon may know about a chip without importing its driver's tables.

A driver class publishes one :class:`ChipFacts` record as its ``facts`` attribute. The
power model, the status APIs and telemetry read cores, default operating point and power
coefficients from it (through :func:`stratum_client.asic.registry.chip_facts` when they
only have a model name), so a third-party chip gets real figures the same way the
built-in ones do. Plain data: no I/O, no driver import.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_RAMP_STEP_MHZ", "ChipFacts"]

DEFAULT_RAMP_STEP_MHZ = 6.25
"""The frequency step most hashing-chip PLLs are walked in, and the governor's grid."""


@dataclass(frozen=True, slots=True)
class ChipFacts:
    """One chip model's published figures (per chip, not per chain)."""

    model: str
    """Chip model name as drivers and the config use it, e.g. ``"BM1366"``."""
    cores: int
    """Hashing cores per chip (big cores on BM13xx)."""
    small_cores: int
    """Hashes per clock per chip: GH/s = MHz × small_cores / 1000."""
    default_mhz: float
    default_mv: float
    """Core voltage at ``default_mhz``."""
    static_watts: float | None = None
    """Drawn regardless of frequency; ``None`` when the driver publishes no power model."""
    watts_at_default: float | None = None
    """Total per chip at ``default_mhz`` and ``default_mv``."""
    ramp_step_mhz: float = DEFAULT_RAMP_STEP_MHZ
    """Frequencies the chip can be set to lie on this grid."""

    @property
    def has_power_model(self) -> bool:
        return self.static_watts is not None and self.watts_at_default is not None

    def expected_ghs(self, mhz: float, chips: int = 1) -> float:
        """Nominal hash rate of ``chips`` chips at ``mhz``."""
        return mhz * self.small_cores * chips / 1000.0
