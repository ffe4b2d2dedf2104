"""The two small buses a board's peripherals hang on: I2C and GPIO.

Peripheral code (:mod:`stratum_client.boards.peripherals`) talks only to these protocols,
so the same TPS546 or EMC2101 code runs over the bitaxe-raw USB bridge
(:class:`~stratum_client.boards.io.bitaxe_raw.BitaxeRawClient`), over ``/dev/i2c-N``
(:class:`~stratum_client.boards.io.linux.SmbusI2c`) and against the emulator's register
models (:class:`~stratum_client.boards.emulator.buses.ModelI2c`). Every method may raise a
:class:`~stratum_client.boards.errors.BoardError`: a NACK, a timeout or a lost link.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["GpioLines", "I2cBus"]


class I2cBus(Protocol):
    """Transactions on one I2C bus, addressed by 7-bit device address."""

    async def write(self, address: int, data: bytes) -> None:
        """Write ``data`` (register byte first, for register writes)."""

    async def read(self, address: int, count: int) -> bytes:
        """Read ``count`` bytes."""

    async def write_read(self, address: int, data: bytes, count: int) -> bytes:
        """Write ``data``, then read ``count`` bytes after a repeated start."""


class GpioLines(Protocol):
    """Output and input lines, by the board's line number (levels, not meanings)."""

    async def set_line(self, line: int, level: bool) -> None:
        """Drive ``line`` high (True) or low."""

    async def get_line(self, line: int) -> bool:
        """Read ``line``'s level."""
