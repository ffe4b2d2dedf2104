"""I2C and GPIO on the controller itself: ``/dev/i2c-N`` through smbus2, lines through the
libgpiod v2 bindings. Both libraries are imported only when a board opens these buses.

The calls block (an ioctl each), so they run in a worker thread, one at a time per bus;
every failure becomes a :class:`~stratum_client.boards.errors.BoardError` naming the
device, the address or line, and what the kernel said.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from stratum_client.boards.errors import BoardError, I2cNackError

__all__ = ["GpiodLines", "SmbusI2c"]

T = TypeVar("T")


def _module(name: str, package: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BoardError(f"this board needs the {package} package ({exc})") from exc


class SmbusI2c:
    """An :class:`~stratum_client.boards.bus.I2cBus` on ``/dev/i2c-<bus>``."""

    def __init__(self, bus: int) -> None:
        self.bus = bus
        self.path = f"/dev/i2c-{bus}"
        self._smbus2 = _module("smbus2", "smbus2")
        try:
            self._dev = self._smbus2.SMBus(bus)
        except OSError as exc:
            raise BoardError(f"{self.path}: cannot open: {exc}") from exc
        self._lock = asyncio.Lock()

    async def _run(self, address: int, what: str, call: Callable[[], T]) -> T:
        async with self._lock:
            try:
                return await asyncio.to_thread(call)
            except OSError as exc:
                raise I2cNackError(0xFF, str(exc), f"{self.path} 0x{address:02X} {what}") from exc

    def _transfer(self, *messages: Any) -> None:
        self._dev.i2c_rdwr(*messages)

    async def write(self, address: int, data: bytes) -> None:
        message = self._smbus2.i2c_msg.write(address, data)
        await self._run(address, "write", lambda: self._transfer(message))

    async def read(self, address: int, count: int) -> bytes:
        message = self._smbus2.i2c_msg.read(address, count)
        await self._run(address, "read", lambda: self._transfer(message))
        return bytes(message)

    async def write_read(self, address: int, data: bytes, count: int) -> bytes:
        write = self._smbus2.i2c_msg.write(address, data)
        read = self._smbus2.i2c_msg.read(address, count)
        await self._run(address, "write-read", lambda: self._transfer(write, read))
        return bytes(read)

    def close(self) -> None:
        self._dev.close()


class GpiodLines:
    """A :class:`~stratum_client.boards.bus.GpioLines` over one gpiochip (libgpiod v2).

    ``outputs`` start at the given level (so reset can be held from the first moment);
    ``inputs`` are read only.
    """

    def __init__(self, chip: str, outputs: dict[int, bool], inputs: tuple[int, ...],
                 consumer: str = "stratum-client") -> None:  # fmt: skip
        self.chip = chip
        gpiod = _module("gpiod", "gpiod (libgpiod v2)")
        line = gpiod.line
        config: dict[Any, Any] = {
            offset: gpiod.LineSettings(
                direction=line.Direction.OUTPUT, output_value=_value(line, level)
            )
            for offset, level in outputs.items()
        }
        if inputs:
            config[tuple(inputs)] = gpiod.LineSettings(direction=line.Direction.INPUT)
        self._line = line
        try:
            self._request = gpiod.request_lines(chip, consumer=consumer, config=config)
        except OSError as exc:
            wanted = sorted([*outputs, *inputs])
            raise BoardError(f"{chip}: cannot request lines {wanted}: {exc}") from exc

    async def set_line(self, line: int, level: bool) -> None:
        try:
            await asyncio.to_thread(self._request.set_value, line, _value(self._line, level))
        except OSError as exc:
            raise BoardError(f"{self.chip}: line {line} not set: {exc}") from exc

    async def get_line(self, line: int) -> bool:
        try:
            value = await asyncio.to_thread(self._request.get_value, line)
        except OSError as exc:
            raise BoardError(f"{self.chip}: line {line} not read: {exc}") from exc
        return bool(value == self._line.Value.ACTIVE)

    def close(self) -> None:
        self._request.release()


def _value(line: Any, level: bool) -> Any:
    return line.Value.ACTIVE if level else line.Value.INACTIVE
