"""What every Bitaxe behind the bitaxe-raw USB bridge shares, whatever its core regulator.

The bridge enumerates as two CDC-ACM ports: the first (``control``, usually
``/dev/ttyACM0``) carries bitaxe-raw packets for I2C and GPIO, the second (``data``,
``/dev/ttyACM1``) is the ASIC UART the chip driver opens. Every revision has the EMC2101
fan controller at 0x4C and the ASIC's RST_N on bridge GPIO 0, active low; what differs
is the core regulator (a TPS546 on PMBus, or a DS4432U trimming a TPS40305 with its own
enable line), which the subclasses bring. The board option ``timing_scale`` (0..1)
shortens the power-up waits for emulated boards, and ``framing = "v1"`` reads the
successor firmware's replies.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import structlog

from stratum_client.asic.transport import SerialLink
from stratum_client.boards.base import (
    Board,
    BoardLimits,
    BoardReadings,
    BoardSpec,
    Range,
    Reading,
    UsbMatch,
)
from stratum_client.boards.clock import Clock, MonotonicClock
from stratum_client.boards.codecs.bitaxe_raw import Framing
from stratum_client.boards.errors import (
    BoardError,
    ControlLinkError,
    ControlReplyError,
    NotBitaxeRawError,
)
from stratum_client.boards.io.bitaxe_raw import BitaxeRawClient
from stratum_client.boards.peripherals import Emc2101
from stratum_client.errors import StratumClientError

__all__ = [
    "BITAXE_RAW_USB",
    "BM136X_LIMITS",
    "I2C_HZ",
    "RESET_LINE",
    "STOP_FAN_PCT",
    "BitaxeRawBoard",
    "BitaxeTiming",
    "all_failed",
    "read_sensor",
]

BM136X_LIMITS = BoardLimits(
    core_voltage_v=Range(1.0, 1.3),
    fan_percent=Range(0.0, 100.0),
    frequency_mhz=Range(400.0, 575.0),
)
"""Every BM1366/BM1368 Bitaxe, whatever its regulator (well inside a DS4432U's reach)."""

T = TypeVar("T")

RESET_LINE = 0
"""bitaxe-raw GPIO index of the ASIC's RST_N (active low)."""
I2C_HZ = 100_000
BITAXE_RAW_USB = UsbMatch(0xC0DE, 0xCAFE, "OSMU", "Bitaxe")
STOP_FAN_PCT = 25.0
"""Fan duty left after a normal power-down: the heatsink still sheds what is stored."""

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BitaxeTiming:
    """Seconds to wait between power-up steps (ESP-Miner and host-tool values)."""

    reset_hold_s: float = 0.1
    after_configure_s: float = 0.1
    after_turn_on_s: float = 0.5
    after_release_s: float = 0.2
    diode_settle_s: float = 0.5
    """The diode reads nonsense this long after reset release (reset transient)."""

    def scaled(self, factor: float) -> BitaxeTiming:
        return BitaxeTiming(*(getattr(self, f) * factor for f in self.__slots__))


class BitaxeRawBoard(Board):
    """One Bitaxe over bitaxe-raw: the link, reset, fan and the switch-off sequences.

    Subclasses bring the regulator: :meth:`_identify` (check the parts are there),
    :meth:`_rail_off` (what "core voltage off" is on that board, named by
    :attr:`rail_off_step` in every safe-state report) and the power-up between.
    """

    port_roles = ("control", "data")
    chip_count = 1
    usb = (BITAXE_RAW_USB,)
    timing: ClassVar[BitaxeTiming] = BitaxeTiming()
    rail_off_step: ClassVar[str] = "core voltage off"
    """The safe-state step that takes the core rail down, as a failure report names it."""

    def __init__(self, spec: BoardSpec) -> None:
        super().__init__(spec)
        scale = spec.board_options.get("timing_scale", 1.0)
        if not isinstance(scale, int | float) or not 0 <= scale <= 1:
            raise BoardError(f"{self.label}: board option timing_scale must be 0..1, got {scale!r}")
        self.delays = self.timing.scaled(float(scale))
        self.control_port = spec.port("control")
        self.link = SerialLink(self.control_port)
        self.client = BitaxeRawClient(self.link, framing=self._framing())
        self.emc = Emc2101(self.client)
        self.vout_target = self.core_voltage_target or 0.0
        self.clock: Clock = MonotonicClock()
        """Paces the power-up waits and stamps readings (tests may speed it up)."""
        self._released_at: float | None = None
        self._log = _log.bind(board=self.label, port=self.control_port)

    def _framing(self) -> Framing:
        """Board option ``framing``: ``v0`` (the bitaxe-raw firmware) or ``v1`` (its
        successor's replies with a status byte)."""
        value = self.spec.board_options.get("framing", "v0")
        try:
            return Framing(str(value).lower())
        except ValueError:
            known = ", ".join(f.value for f in Framing)
            raise BoardError(
                f"{self.label}: board option framing must be one of {known}, got {value!r}"
            ) from None

    # -- what the regulator brings --------------------------------------------------------

    @abc.abstractmethod
    async def _identify(self) -> None:
        """Check every part this revision has answers as itself (PeripheralError if not)."""

    @abc.abstractmethod
    async def _rail_off(self) -> None:
        """Take the core rail as far down as this board can."""

    # -- control channel ----------------------------------------------------------------

    async def open(self) -> None:
        """Open the control port, check it is a bitaxe-raw bridge with this board's
        peripherals, assert reset and take the core rail down (it may have been left on)."""
        try:
            await self.link.open()
        except StratumClientError as exc:
            raise ControlLinkError(f"{self.label}: cannot open control port: {exc}") from exc
        try:
            await self._hold_reset()
        except ControlLinkError as exc:
            await self.link.close()
            raise NotBitaxeRawError(
                f"{self.label}: {self.control_port} is not a bitaxe-raw control port ({exc})"
            ) from exc
        try:
            await self._set_i2c_clock()
            await self._identify()
            await self._rail_off()
        except BaseException:
            await self.link.close()
            raise
        self._log.info("board opened")

    async def _set_i2c_clock(self) -> None:
        try:
            await self.client.set_i2c_frequency(I2C_HZ)
        except ControlReplyError as exc:  # the first firmware has no such command
            self._log.debug("bridge keeps its I2C clock", reason=str(exc))

    async def close(self) -> None:
        await self.link.close()

    async def _hold_reset(self) -> None:
        self._released_at = None
        await self.client.set_line(RESET_LINE, False)

    async def _release_reset(self) -> None:
        """Reset released, then the settle the chips need before they hear anything."""
        await self.client.set_line(RESET_LINE, True)
        self._released_at = self.clock.now()
        await self.clock.sleep(self.delays.after_release_s)

    async def _fan_for_power_up(self, ideality: int | None, beta: int | None) -> None:
        await self.emc.configure(ideality, beta)
        await self.emc.set_duty(self.spec.fan_percent or 100.0)

    async def _relink(self) -> None:
        """After the control port vanished: one attempt to open it again (the USB device
        may be back). What the board did meanwhile is unknown, so the next safe state or
        power-up starts from scratch."""
        if self.link.is_open:
            return
        try:
            await self.link.open()
        except StratumClientError as exc:
            raise ControlLinkError(f"{self.label}: control port still gone: {exc}") from exc
        self._released_at = None
        self._log.info("control port back")

    # -- switching off ------------------------------------------------------------------

    async def safe_state(self) -> None:
        """Core rail down, reset asserted, fan 100 %: every step tried, failures raised
        together."""
        await self._every_step(
            ("control port", self._relink),
            (self.rail_off_step, self._rail_off),
            ("reset asserted", self._hold_reset),
            ("fan 100 %", lambda: self.emc.set_duty(100.0)),
        )

    async def power_down(self) -> None:
        """Reset asserted, core rail down, fan low: every step tried."""
        await self._every_step(
            ("reset asserted", self._hold_reset),
            (self.rail_off_step, self._rail_off),
            ("fan low", lambda: self.emc.set_duty(STOP_FAN_PCT)),
        )

    # -- fan and shared readings ---------------------------------------------------------

    async def set_fan(self, percent: float) -> None:
        await self.emc.set_duty(self.check_fan(percent))

    async def _rpm(self) -> float:
        return float(await self.emc.rpm())

    def _settling(self, at: float) -> bool:
        released = self._released_at
        return released is not None and at - released < self.delays.diode_settle_s


def all_failed(at: float, why: str) -> BoardReadings:
    """Every reading failed for one reason (the control port is gone)."""
    failed: Reading[float] = Reading.failed(why)
    return BoardReadings(
        at=at, asic_temp_c=failed, vr_temp_c=failed, fan_rpm=failed, fan_duty_pct=failed,
        vin_v=failed, vout_v=failed, iout_a=failed, power_w=failed,
        faults=Reading.failed(why), link_lost=True,
    )  # fmt: skip


async def read_sensor(read: Callable[[], Awaitable[T]]) -> Reading[T]:
    """One sensor read as a :class:`Reading`: a failure or a non-finite value is failed."""
    try:
        value = await read()
    except StratumClientError as exc:
        return Reading.failed(str(exc))
    if isinstance(value, float) and not math.isfinite(value):
        return Reading.failed(f"not a number: {value}")
    return Reading.of(value)
