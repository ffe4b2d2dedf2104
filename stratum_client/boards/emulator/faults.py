"""Faults to inject into an emulated board, all off by default; tests flip them live."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["BoardFaults", "SensorFault"]


class SensorFault(enum.StrEnum):
    NACK = "nack"
    """The device does not acknowledge: the bridge answers with its I2C error."""
    GARBAGE = "garbage"
    """The bridge's reply to a request for the device is line noise."""
    IMPLAUSIBLE = "implausible"
    """The device answers, with a temperature no working board has (127 °C)."""


@dataclass
class BoardFaults:
    fan_stalled: bool = False
    """The tach reads 0 whatever the duty, and the fan cools nothing."""
    sensors: dict[int, SensorFault] = field(default_factory=dict)
    """Per I2C address (0x24 TPS546; 0x48 DS4432U, 0x40 INA260; 0x4C fan controller and
    temperatures)."""
    vr_fault: int = 0
    """STATUS_WORD bits the regulator latches (and re-latches after CLEAR_FAULTS)."""
    garbage_sent: int = field(default=0, init=False)
    nacks_sent: int = field(default=0, init=False)

    def clear(self) -> None:
        self.fan_stalled = False
        self.sensors.clear()
        self.vr_fault = 0
