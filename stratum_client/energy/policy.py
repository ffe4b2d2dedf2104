"""What the energy governor enforces and what it decides, as plain frozen data.

:class:`Policy` is built from ``[energy]`` by ``energy.config.parse_energy``;
:class:`Decision` is what ``energy.governor.Governor.step`` returns and the daemon
applies. Kept apart from the governor so that config, ledger and daemon code can name
them without the decision logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from stratum_client.energy.power import PowerSample

__all__ = [
    "FAIL_SAFES",
    "MODES",
    "Decision",
    "DeviceDecision",
    "FailSafe",
    "Mode",
    "Policy",
    "SurplusPolicy",
    "ThresholdPolicy",
]

Mode = Literal["always", "surplus", "carbon", "price"]
FailSafe = Literal["pause", "run", "hold-last"]
MODES: tuple[Mode, ...] = ("always", "surplus", "carbon", "price")
FAIL_SAFES: tuple[FailSafe, ...] = ("pause", "run", "hold-last")


@dataclass(frozen=True, slots=True)
class SurplusPolicy:
    """``[energy.surplus]``."""

    margin_w: float = 5.0
    """Spare surplus needed to resume or to raise the frequency (hysteresis)."""
    reserve_w: float = 0.0
    """Surplus left unused, e.g. for meter noise or a battery's trickle."""
    net_of_miner: bool = True
    """The surplus signal already has the miners' draw subtracted (a grid meter)."""


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """``[energy.carbon]`` / ``[energy.price]``: run while the value ≤ threshold."""

    threshold: float
    margin: float = 0.0
    """Resume only at ``threshold − margin`` or lower (hysteresis)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What the governor enforces; built by ``energy.config.parse_energy``."""

    modes: tuple[Mode, ...] = ("always",)
    fail_safe: FailSafe = "pause"
    control_interval: float = 1.0
    min_dwell: float = 300.0
    surplus: SurplusPolicy = field(default_factory=SurplusPolicy)
    carbon: ThresholdPolicy | None = None
    price: ThresholdPolicy | None = None

    @property
    def label(self) -> str:
        return "+".join(self.modes)


@dataclass(frozen=True, slots=True)
class DeviceDecision:
    """What one device should be doing now."""

    run: bool
    frequency_mhz: float | None
    """The frequency to ramp to; None while paused."""
    reason: str
    power_w: float = 0.0
    """Draw for the ledger: measured when a fresh reading exists, else modelled."""
    measured: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The full current state plus which devices changed in this step."""

    at: float
    mode: str
    per_device: Mapping[str, DeviceDecision]
    changed: tuple[str, ...]
    """Devices whose run state or frequency differs from the previous step (all, first)."""
    fail_safe_engaged: bool
    fail_safe_reason: str | None = None
    surplus_w: float | None = None
    """Surplus available to the miners (their own draw added back when net of miner)."""
    carbon_intensity: float | None = None

    @property
    def changes(self) -> dict[str, DeviceDecision]:
        """Only what the daemon must act on."""
        return {name: self.per_device[name] for name in self.changed}

    def power_samples(self) -> dict[str, PowerSample]:
        """Ledger input for this instant."""
        return {
            name: PowerSample(d.power_w, d.measured, d.run, d.reason)
            for name, d in self.per_device.items()
        }
