"""The board contract: what the daemon may ask of a mining board, and what it reads back.

A :class:`Board` owns one or more chip chains (the serial port each sits on and the chip
driver the board implies), a control channel and the peripherals on it: the core
regulator, the reset line, the fan and the temperature sensors. The daemon knows only this
interface; the built-in boards and third-party ones (entry-point group
``stratum_client.boards``) implement it.

Lifecycle and the order that matters (see ``docs/boards.md``)::

    async with board:                 # open(): control channel up, chips held in reset
        await board.power_up()        # regulator configured, VOUT set, output on,
                                      # reset released: only now may chip init start
        ... chip driver runs on board.chains[i].port ...
        readings = await board.readings()
        await board.safe_state()      # core voltage off, reset asserted, fan 100 %
    # __aexit__: power_down() (voltage off, reset asserted), then close()

Setting checks (:meth:`Board.check_fan` and friends) raise
:class:`~stratum_client.boards.errors.BoardLimitError` naming the setting, the value and
the board's range, before anything is sent.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from stratum_client.asic.records import DeviceSpec
from stratum_client.errors import StratumClientError

from .errors import BoardError, BoardLimitError, SafeStateError

__all__ = [
    "Board",
    "BoardLimits",
    "BoardReadings",
    "BoardSpec",
    "ChainPort",
    "Range",
    "Reading",
    "Sensor",
    "UsbMatch",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive range of a setting."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int | float)
            and math.isfinite(value)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True, slots=True)
class BoardLimits:
    """What a board allows; None means the board cannot set that at all."""

    core_voltage_v: Range | None = None
    fan_percent: Range | None = None
    frequency_mhz: Range | None = None


class Sensor(enum.StrEnum):
    """Readings a board provides; the safety policy requires exactly these to be good."""

    ASIC_TEMP = "asic_temp"
    VR_TEMP = "vr_temp"
    FAN_RPM = "fan_rpm"
    FAULTS = "faults"
    POWER = "power"


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """One sensor value, or why it could not be read; both None = not measured here."""

    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None

    @classmethod
    def of(cls, value: T) -> Reading[T]:
        return cls(value, None)

    @classmethod
    def failed(cls, error: str) -> Reading[T]:
        return cls(None, error)


_ABSENT_F: Reading[float] = Reading()
_ABSENT_FAULTS: Reading[tuple[str, ...]] = Reading()


@dataclass(frozen=True, slots=True)
class BoardReadings:
    """One poll of a board's sensors; every field can fail on its own."""

    at: float
    """Monotonic seconds when the poll started."""
    asic_temp_c: Reading[float] = _ABSENT_F
    vr_temp_c: Reading[float] = _ABSENT_F
    """Core regulator temperature."""
    fan_rpm: Reading[float] = _ABSENT_F
    fan_duty_pct: Reading[float] = _ABSENT_F
    """The duty the fan controller is driving (read back, not what was asked)."""
    vin_v: Reading[float] = _ABSENT_F
    iin_a: Reading[float] = _ABSENT_F
    vout_v: Reading[float] = _ABSENT_F
    """Measured core voltage."""
    iout_a: Reading[float] = _ABSENT_F
    power_w: Reading[float] = _ABSENT_F
    """Measured power of the core rail (VOUT × IOUT, or the power monitor's)."""
    faults: Reading[tuple[str, ...]] = _ABSENT_FAULTS
    """Latched regulator fault bits by name; an empty tuple is a good reading."""
    settling: bool = False
    """True just after reset release, when the ASIC diode is known to read nonsense."""
    link_lost: bool = False
    """The control channel itself is gone (unplugged), not a sensor."""

    def reading(self, sensor: Sensor) -> Reading[float] | Reading[tuple[str, ...]]:
        """The reading the safety policy checks for ``sensor``."""
        match sensor:
            case Sensor.ASIC_TEMP:
                return self.asic_temp_c
            case Sensor.VR_TEMP:
                return self.vr_temp_c
            case Sensor.FAN_RPM:
                return self.fan_rpm
            case Sensor.FAULTS:
                return self.faults
            case Sensor.POWER:
                return self.power_w


@dataclass(frozen=True, slots=True)
class UsbMatch:
    """How discovery recognises a board's USB bridge: IDs and/or descriptor strings."""

    vendor_id: int | None = None
    product_id: int | None = None
    manufacturer: str | None = None
    product: str | None = None
    """Matched exactly (case-insensitive); None matches anything."""


@dataclass(frozen=True, slots=True)
class ChainPort:
    """One chip chain the board carries: where it is and which driver runs it."""

    port: str
    driver: str
    chips: int
    frequency_mhz: float | None = None

    def to_device_spec(
        self,
        *,
        ticket_difficulty: float = 256.0,
        difficulty_scale: float = 1.0,
        options: Mapping[str, object] | None = None,
    ) -> DeviceSpec:
        """The chip driver's view of this chain."""
        return DeviceSpec(
            port=self.port,
            chips=self.chips,
            frequency_mhz=self.frequency_mhz,
            ticket_difficulty=ticket_difficulty,
            difficulty_scale=difficulty_scale,
            options=options or {},
        )


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """What one ``[[devices]]`` table with ``board = "..."`` says (see :mod:`.spec`)."""

    board: str
    name: str = ""
    ports: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Port roles to paths: ``control``/``data`` (bitaxe-raw) or ``port`` (a tty)."""
    driver: str | None = None
    """Chip driver; only the ``serial`` board takes it from the config."""
    chips: int | None = None
    frequency_mhz: float | None = None
    core_voltage_v: float | None = None
    fan_percent: float | None = None
    """Fixed fan duty; None lets the safety loop's PID drive the fan."""
    board_options: Mapping[str, object] = field(default_factory=lambda: _frozen(None))

    def port(self, role: str) -> str:
        try:
            return self.ports[role]
        except KeyError:
            raise BoardError(f"{self.board}: no {role} port configured") from None


class Board(abc.ABC):
    """A mining board: power, reset, fan and sensors around one or more chip chains.

    Class attributes are the board's facts, readable without an instance (registry,
    discovery, config checks). Subclasses implement the async methods; the defaults of
    :meth:`check_fan`, :meth:`check_core_voltage` and :meth:`request_frequency` enforce
    :attr:`limits`.
    """

    name: ClassVar[str]
    """Registry name, e.g. ``"bitaxe-gamma"``."""
    chip_driver: ClassVar[str | None] = None
    """Driver the board implies; None when the config must say (``serial``)."""
    chip_count: ClassVar[int | None] = None
    limits: ClassVar[BoardLimits] = BoardLimits()
    sensors: ClassVar[frozenset[Sensor]] = frozenset()
    """What :meth:`readings` measures; the safety loop runs only if this is not empty."""
    port_roles: ClassVar[tuple[str, ...]] = ("port",)
    """The ports the config must give, by role."""
    default_frequency_mhz: ClassVar[float | None] = None
    default_core_voltage_v: ClassVar[float | None] = None
    usb: ClassVar[tuple[UsbMatch, ...]] = ()
    core_off: ClassVar[str] = "off"
    """What :meth:`safe_state` and :meth:`power_down` leave the core rail at, for reports:
    ``"off"`` where the board switches it, else what it does instead."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self.label = spec.name or self.name
        for role in self.port_roles:
            spec.port(role)
        if spec.frequency_mhz is not None:
            self.request_frequency(spec.frequency_mhz)
        if spec.core_voltage_v is not None:
            self.check_core_voltage(spec.core_voltage_v)
        if spec.fan_percent is not None:
            self.check_fan(spec.fan_percent)

    # -- facts and checks ---------------------------------------------------------------

    @property
    def chains(self) -> tuple[ChainPort, ...]:
        """The chip chains on this board, for the daemon to start a driver on each."""
        driver = self.chip_driver or self.spec.driver
        chips = self.chip_count or self.spec.chips
        if driver is None or chips is None:
            raise BoardError(f"{self.label}: board {self.name!r} needs a driver and chips")
        frequency = self.spec.frequency_mhz or self.default_frequency_mhz
        return (ChainPort(self.spec.port(self.port_roles[-1]), driver, chips, frequency),)

    @property
    def core_voltage_target(self) -> float | None:
        """The voltage :meth:`power_up` sets: the config's, else the board's default."""
        return self.spec.core_voltage_v or self.default_core_voltage_v

    async def _every_step(self, *steps: tuple[str, Callable[[], Awaitable[None]]]) -> None:
        """Run every step of a switch-off even when one fails (it must go as far as it
        can), then raise :class:`SafeStateError` naming each step that failed."""
        failures = []
        for what, step in steps:
            try:
                await step()
            except StratumClientError as exc:
                failures.append(f"{what}: {exc}")
        if failures:
            raise SafeStateError(self.label, failures)

    def _check(self, setting: str, value: float, allowed: Range | None) -> float:
        if allowed is None:
            raise BoardError(f"{self.label}: board {self.name!r} cannot set {setting}")
        if value not in allowed:
            raise BoardLimitError(self.name, setting, value, allowed.low, allowed.high)
        return float(value)

    def check_fan(self, percent: float) -> float:
        return self._check("fan_percent", percent, self.limits.fan_percent)

    def check_core_voltage(self, volts: float) -> float:
        return self._check("core_voltage", volts, self.limits.core_voltage_v)

    def request_frequency(self, mhz: float) -> float:
        """Check a frequency request; the daemon carries it out through the chip driver."""
        if self.limits.frequency_mhz is None:
            return float(mhz)
        return self._check("frequency_mhz", mhz, self.limits.frequency_mhz)

    # -- the control side ---------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Bring the control channel up and hold the chips in reset; check it is this board."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the control channel (after :meth:`power_down`)."""

    @abc.abstractmethod
    async def power_up(self) -> None:
        """Regulator configured, VOUT set, output on, reset released, in that order."""

    @abc.abstractmethod
    async def readings(self) -> BoardReadings:
        """Poll every sensor; a failing sensor gives a failed :class:`Reading`, not an error."""

    @abc.abstractmethod
    async def set_fan(self, percent: float) -> None:
        """Drive the fan at ``percent`` (checked against the limits)."""

    @abc.abstractmethod
    async def set_core_voltage(self, volts: float) -> None:
        """Set the core voltage (checked against the limits); applied at once if on."""

    @abc.abstractmethod
    async def safe_state(self) -> None:
        """Core voltage off, reset asserted, fan 100 %; every step tried, then any failure
        raised as :class:`~stratum_client.boards.errors.SafeStateError`."""

    @abc.abstractmethod
    async def power_down(self) -> None:
        """Normal stop: reset asserted, core voltage off (fan left at a low speed)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.power_down()
        finally:
            await self.close()
