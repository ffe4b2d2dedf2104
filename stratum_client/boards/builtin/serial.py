"""``serial``: a plain chip chain on a tty whose power the user supplies (the old behaviour).

The board has no control side: power-up, safe state and power-down do nothing, it measures
nothing (so no safety loop runs), and the config names the chip driver and chip count.
"""

from __future__ import annotations

import time
from typing import ClassVar

from stratum_client.boards.base import Board, BoardLimits, BoardReadings, Range

__all__ = ["SerialBoard"]


class SerialBoard(Board):
    """A chain the user powers; the daemon only talks to the chips."""

    name = "serial"
    limits: ClassVar[BoardLimits] = BoardLimits(frequency_mhz=Range(1.0, 2000.0))
    port_roles = ("port",)

    async def open(self) -> None:
        """Nothing to open: the chip driver owns the tty."""

    async def close(self) -> None:
        """Nothing to release."""

    async def power_up(self) -> None:
        """Power is the user's; the chips are assumed powered and out of reset."""

    async def readings(self) -> BoardReadings:
        return BoardReadings(at=time.monotonic())

    async def set_fan(self, percent: float) -> None:
        self.check_fan(percent)

    async def set_core_voltage(self, volts: float) -> None:
        self.check_core_voltage(volts)

    async def safe_state(self) -> None:
        """Nothing can be switched off here; the daemon still stops dispatch."""

    async def power_down(self) -> None:
        """Nothing to switch off."""
