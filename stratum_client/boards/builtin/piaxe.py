"""``piaxe``: a PiAxe-style Raspberry Pi HAT with one BM1366 on the Pi's UART.

The HAT's core buck is switched by its SDN line (high = on) and reports PGOOD; the chip's
reset line is driven by the Pi; an LM75-type sensor at 0x48 on ``/dev/i2c-1`` is the only
temperature. Core voltage is set in hardware and the fan runs from the Pi's PWM at a fixed
duty, so neither can be set here (asking is a clear error). Line numbers are libgpiod
offsets on ``/dev/gpiochip0`` (the BCM numbers of header pins 11, 13 and 15); the HAT's
reset is active high (the original host code pulses it high, then leaves it low to run).
All of it can be changed with board options: ``i2c_bus``, ``gpio_chip``, ``sdn_line``,
``pgood_line``, ``reset_line``, ``reset_active_high``, ``pgood_timeout_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import structlog

from stratum_client.boards.base import (
    Board,
    BoardLimits,
    BoardReadings,
    BoardSpec,
    Range,
    Reading,
    Sensor,
)
from stratum_client.boards.bus import GpioLines, I2cBus
from stratum_client.boards.clock import Clock, MonotonicClock
from stratum_client.boards.errors import BoardError, PeripheralError
from stratum_client.boards.io.linux import GpiodLines, SmbusI2c
from stratum_client.boards.peripherals import Lm75
from stratum_client.errors import StratumClientError

__all__ = ["PiAxeBoard", "PiAxeWiring"]

PGOOD_POLL_S = 0.05
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PiAxeWiring:
    i2c_bus: int = 1
    gpio_chip: str = "/dev/gpiochip0"
    sdn_line: int = 17
    pgood_line: int = 27
    reset_line: int = 22
    reset_active_high: bool = True
    pgood_timeout_s: float = 5.0

    @classmethod
    def from_options(cls, label: str, options: dict[str, object]) -> PiAxeWiring:
        """The defaults with any board option of the same name; a wrong type is an error."""
        defaults = cls()
        values: dict[str, object] = {}
        for name in cls.__slots__:
            value = options.get(name, getattr(defaults, name))
            if not _fits(value, type(getattr(defaults, name))):
                kind = type(getattr(defaults, name)).__name__
                raise BoardError(f"{label}: board option {name} must be {kind}, got {value!r}")
            values[name] = value
        return cls(**values)  # type: ignore[arg-type]


def _fits(value: object, kind: type) -> bool:
    if kind is bool or isinstance(value, bool):
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


class PiAxeBoard(Board):
    """The HAT: SDN/PGOOD power, reset, one LM75, the chip on the Pi's UART."""

    name = "piaxe"
    chip_driver = "bm1366"
    chip_count = 1
    default_frequency_mhz = 485.0
    limits: ClassVar[BoardLimits] = BoardLimits(frequency_mhz=Range(400.0, 575.0))
    sensors: ClassVar[frozenset[Sensor]] = frozenset({Sensor.ASIC_TEMP})
    port_roles = ("port",)

    def __init__(self, spec: BoardSpec) -> None:
        super().__init__(spec)
        self.wiring = PiAxeWiring.from_options(self.label, dict(spec.board_options))
        self.i2c: I2cBus | None = None
        self.gpio: GpioLines | None = None
        """Opened by :meth:`open` unless set before (an emulated HAT in tests)."""
        self.clock: Clock = MonotonicClock()
        self._opened: list[Callable[[], None]] = []

    async def open(self) -> None:
        w = self.wiring
        if self.gpio is None:
            outputs = {w.sdn_line: False, w.reset_line: w.reset_active_high}
            lines = GpiodLines(w.gpio_chip, outputs, (w.pgood_line,))
            self.gpio, self._opened = lines, [*self._opened, lines.close]
        if self.i2c is None:
            bus = SmbusI2c(w.i2c_bus)
            self.i2c, self._opened = bus, [*self._opened, bus.close]
        await self._hold_reset()
        await self._lines().set_line(w.sdn_line, False)

    async def close(self) -> None:
        for close in self._opened:
            close()
        self._opened = []

    def _lines(self) -> GpioLines:
        if self.gpio is None:
            raise BoardError(f"{self.label}: board is not open")
        return self.gpio

    async def _hold_reset(self) -> None:
        w = self.wiring
        await self._lines().set_line(w.reset_line, w.reset_active_high)

    async def power_up(self) -> None:
        """Reset held, buck on (SDN high), PGOOD awaited, reset released."""
        w, lines = self.wiring, self._lines()
        await self._hold_reset()
        await lines.set_line(w.sdn_line, True)
        waited = 0.0
        while not await lines.get_line(w.pgood_line):
            if waited >= w.pgood_timeout_s:
                await lines.set_line(w.sdn_line, False)
                raise PeripheralError(
                    f"{self.label}: PGOOD stayed low {w.pgood_timeout_s:g} s after enabling "
                    "the core supply; supply switched off"
                )
            await self.clock.sleep(PGOOD_POLL_S)
            waited += PGOOD_POLL_S
        await self.clock.sleep(0.5)
        await lines.set_line(w.reset_line, not w.reset_active_high)
        await self.clock.sleep(0.5)
        _log.info("board powered up", board=self.label)

    async def readings(self) -> BoardReadings:
        at = self.clock.now()
        if self.i2c is None:
            return BoardReadings(at=at, asic_temp_c=Reading.failed("board is not open"))
        try:
            temperature = Reading.of(await Lm75(self.i2c).temperature())
        except StratumClientError as exc:
            temperature = Reading.failed(str(exc))
        return BoardReadings(at=at, asic_temp_c=temperature)

    async def set_fan(self, percent: float) -> None:
        self.check_fan(percent)

    async def set_core_voltage(self, volts: float) -> None:
        self.check_core_voltage(volts)

    async def safe_state(self) -> None:
        """Buck off, reset asserted (the fan is not ours to switch)."""
        await self._every_step(
            ("core supply off", self._buck_off), ("reset asserted", self._hold_reset)
        )

    async def power_down(self) -> None:
        await self._every_step(
            ("reset asserted", self._hold_reset), ("core supply off", self._buck_off)
        )

    async def _buck_off(self) -> None:
        await self._lines().set_line(self.wiring.sdn_line, False)
