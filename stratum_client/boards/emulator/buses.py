"""In-process buses over register models, for boards whose buses are the controller's own
(a Pi HAT's ``/dev/i2c-N`` and gpiochip): the board code runs unchanged against them.

:class:`ModelI2c` routes transactions to models by address (a missing device NACKs);
:class:`ModelGpio` keeps line levels, and ``follow`` makes an input line track an output
(a supply's PGOOD following its enable), as the HAT's hardware does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from stratum_client.boards.codecs import lm75
from stratum_client.boards.errors import BoardError, I2cNackError

from .models import Nack

__all__ = ["Lm75Model", "ModelGpio", "ModelI2c"]


class _Device(Protocol):
    def write(self, data: bytes) -> None: ...
    def write_read(self, data: bytes, count: int) -> bytes: ...


@dataclass
class Lm75Model:
    temperature_c: float = 25.0
    _pointer: int = 0

    def write(self, data: bytes) -> None:
        if not data:
            raise Nack
        self._pointer = data[0]

    def write_read(self, data: bytes, count: int) -> bytes:
        if data:
            self.write(data)
        if self._pointer != lm75.TEMPERATURE_REGISTER:
            return bytes(count)
        return lm75.encode_temperature(self.temperature_c)[:count]


class ModelI2c:
    """An I2cBus whose devices are register models."""

    def __init__(self, devices: Mapping[int, _Device]) -> None:
        self.devices = dict(devices)

    def _device(self, address: int) -> _Device:
        device = self.devices.get(address)
        if device is None:
            raise I2cNackError(0xFF, "no device", f"I2C 0x{address:02X}")
        return device

    async def write(self, address: int, data: bytes) -> None:
        try:
            self._device(address).write(data)
        except Nack:
            raise I2cNackError(0xFF, "NACK", f"I2C 0x{address:02X} write") from None

    async def read(self, address: int, count: int) -> bytes:
        return await self.write_read(address, b"", count)

    async def write_read(self, address: int, data: bytes, count: int) -> bytes:
        try:
            return self._device(address).write_read(data, count)
        except Nack:
            raise I2cNackError(0xFF, "NACK", f"I2C 0x{address:02X} read") from None


@dataclass
class ModelGpio:
    """GpioLines with levels in a dict; ``follow[input] = output`` mirrors a line."""

    levels: dict[int, bool] = field(default_factory=dict)
    follow: dict[int, int] = field(default_factory=dict)
    history: list[tuple[int, bool]] = field(default_factory=list)
    """Every ``set_line`` in order."""

    async def set_line(self, line: int, level: bool) -> None:
        if line in self.follow:
            raise BoardError(f"GPIO {line} is an input")
        self.levels[line] = level
        self.history.append((line, level))

    async def get_line(self, line: int) -> bool:
        source = self.follow.get(line, line)
        return self.levels.get(source, False)
