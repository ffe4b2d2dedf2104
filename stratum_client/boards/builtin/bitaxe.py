"""Bitaxe Gamma, Supra and Ultra behind the bitaxe-raw USB bridge.

The bridge enumerates as two CDC-ACM ports: the first (``control``, usually
``/dev/ttyACM0``) carries bitaxe-raw packets for I2C and GPIO, the second (``data``,
``/dev/ttyACM1``) is the ASIC UART the chip driver opens. On the I2C bus: the TPS546 core
regulator at 0x24 and the EMC2101 fan controller, whose external diode is the ASIC's,
at 0x4C. GPIO 0 is the ASIC's RST_N, active low.

Power-up order (chips are dead until the last step): reset asserted, TPS546 configured
with the output off (VOUT_MODE read, limits written), VOUT_COMMAND set, output on and
read back, reset released, then the daemon starts the chip driver on the data port. The
waits between the steps are the ones the Bitaxe firmware and host tools use; the board
option ``timing_scale`` (0..1) shortens them for emulated boards, and ``framing = "v1"``
reads the successor firmware's replies.
"""

from __future__ import annotations

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
    Sensor,
    UsbMatch,
)
from stratum_client.boards.clock import Clock, MonotonicClock
from stratum_client.boards.codecs.bitaxe_raw import Framing
from stratum_client.boards.codecs.pmbus import fault_names
from stratum_client.boards.errors import (
    BoardError,
    ControlLinkError,
    ControlReplyError,
    NotBitaxeRawError,
    PeripheralError,
)
from stratum_client.boards.io.bitaxe_raw import BitaxeRawClient
from stratum_client.boards.peripherals import Emc2101, Tps546
from stratum_client.errors import StratumClientError

__all__ = [
    "BITAXE_RAW_USB",
    "BitaxeBoard",
    "BitaxeGamma",
    "BitaxeSupra",
    "BitaxeTiming",
    "BitaxeUltra",
]

T = TypeVar("T")

RESET_LINE = 0
"""bitaxe-raw GPIO index of the ASIC's RST_N (active low)."""
I2C_HZ = 100_000
BITAXE_RAW_USB = UsbMatch(0xC0DE, 0xCAFE, "OSMU", "Bitaxe")
STOP_FAN_PCT = 25.0
"""Fan duty left after a normal power-down: the heatsink still sheds what is stored."""
VOUT_TOLERANCE = 0.1
"""Read-back VOUT may differ from the command by this fraction after turn-on."""

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


class BitaxeBoard(Board):
    """One Bitaxe over bitaxe-raw; subclasses give the chip and its defaults."""

    port_roles = ("control", "data")
    chip_count = 1
    sensors: ClassVar[frozenset[Sensor]] = frozenset(Sensor)
    usb = (BITAXE_RAW_USB,)
    emc2101_ideality: ClassVar[int | None] = None
    emc2101_beta: ClassVar[int | None] = None
    timing: ClassVar[BitaxeTiming] = BitaxeTiming()

    def __init__(self, spec: BoardSpec) -> None:
        super().__init__(spec)
        scale = spec.board_options.get("timing_scale", 1.0)
        if not isinstance(scale, int | float) or not 0 <= scale <= 1:
            raise BoardError(f"{self.label}: board option timing_scale must be 0..1, got {scale!r}")
        self.delays = self.timing.scaled(float(scale))
        self.control_port = spec.port("control")
        self.link = SerialLink(self.control_port)
        self.client = BitaxeRawClient(self.link, framing=self._framing())
        self.tps = Tps546(self.client)
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

    # -- control channel ----------------------------------------------------------------

    async def open(self) -> None:
        """Open the control port, check it is a bitaxe-raw bridge with this board's
        peripherals, assert reset and switch the core rail off (it may have been left on)."""
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
            await self.tps.identify()
            await self.emc.identify()
            await self.tps.turn_off()
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

    # -- power ----------------------------------------------------------------------------

    async def power_up(self) -> None:
        """Reset held, fan up, regulator configured, VOUT set, output on, reset released."""
        if not self.vout_target:
            raise BoardError(f"{self.label}: no core voltage to power up with")
        delays = self.delays
        await self._relink()
        await self._hold_reset()
        await self.clock.sleep(delays.reset_hold_s)
        await self.emc.configure(self.emc2101_ideality, self.emc2101_beta)
        await self.emc.set_duty(self.spec.fan_percent or 100.0)
        await self.tps.read_vout_mode()
        await self.tps.configure()
        await self.clock.sleep(delays.after_configure_s)
        await self.tps.turn_on(self.vout_target)
        await self.clock.sleep(delays.after_turn_on_s)
        measured = await self.tps.read_vout()
        if abs(measured - self.vout_target) > VOUT_TOLERANCE * self.vout_target:
            await self.tps.turn_off()
            raise PeripheralError(
                f"{self.label}: VOUT reads {measured:.3f} V after turn-on "
                f"(commanded {self.vout_target:.3f} V); output switched off"
            )
        await self.client.set_line(RESET_LINE, True)
        self._released_at = self.clock.now()
        await self.clock.sleep(delays.after_release_s)
        self._log.info("board powered up", vout=round(measured, 4))

    async def safe_state(self) -> None:
        """VOUT off, reset asserted, fan 100 %: every step tried, failures raised together."""
        await self._every_step(
            ("control port", self._relink),
            ("core voltage off", self.tps.turn_off),
            ("reset asserted", self._hold_reset),
            ("fan 100 %", lambda: self.emc.set_duty(100.0)),
        )

    async def power_down(self) -> None:
        """Reset asserted, VOUT off, fan low: every step tried."""
        await self._every_step(
            ("reset asserted", self._hold_reset),
            ("core voltage off", self.tps.turn_off),
            ("fan low", lambda: self.emc.set_duty(STOP_FAN_PCT)),
        )

    # -- settings -------------------------------------------------------------------------

    async def set_fan(self, percent: float) -> None:
        await self.emc.set_duty(self.check_fan(percent))

    async def set_core_voltage(self, volts: float) -> None:
        """Change VOUT_COMMAND (applied at once while the output is on)."""
        self.vout_target = self.check_core_voltage(volts)
        await self.tps.set_vout(self.vout_target)

    # -- readings -------------------------------------------------------------------------

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

    async def readings(self) -> BoardReadings:
        """Every sensor once; each fails on its own into a failed :class:`Reading`."""
        at = self.clock.now()
        try:
            await self._relink()
        except ControlLinkError as exc:
            return _all_failed(at, str(exc))
        vout = await _read(self.tps.read_vout)
        iout = await _read(self.tps.read_iout)
        power: Reading[float] = Reading.failed(vout.error or iout.error or "no value")
        if vout.ok and iout.ok:
            power = Reading.of((vout.value or 0.0) * (iout.value or 0.0))
        released = self._released_at
        return BoardReadings(
            at=at,
            asic_temp_c=await _read(self.emc.external_temperature),
            vr_temp_c=await _read(self.tps.read_temperature),
            fan_rpm=await _read(self._rpm),
            fan_duty_pct=await _read(self.emc.duty),
            vin_v=await _read(self.tps.read_vin),
            vout_v=vout,
            iout_a=iout,
            power_w=power,
            faults=await _read(self._faults),
            settling=released is not None and at - released < self.delays.diode_settle_s,
            link_lost=not self.link.is_open,
        )

    async def _rpm(self) -> float:
        return float(await self.emc.rpm())

    async def _faults(self) -> tuple[str, ...]:
        return fault_names(await self.tps.status_word())


def _all_failed(at: float, why: str) -> BoardReadings:
    failed: Reading[float] = Reading.failed(why)
    return BoardReadings(
        at=at, asic_temp_c=failed, vr_temp_c=failed, fan_rpm=failed, fan_duty_pct=failed,
        vin_v=failed, vout_v=failed, iout_a=failed, power_w=failed,
        faults=Reading.failed(why), link_lost=True,
    )  # fmt: skip


async def _read(read: Callable[[], Awaitable[T]]) -> Reading[T]:
    try:
        value = await read()
    except StratumClientError as exc:
        return Reading.failed(str(exc))
    if isinstance(value, float) and not math.isfinite(value):
        return Reading.failed(f"not a number: {value}")
    return Reading.of(value)


class BitaxeGamma(BitaxeBoard):
    """Bitaxe Gamma (600 series): one BM1370, TPS546, EMC2101 external diode."""

    name = "bitaxe-gamma"
    chip_driver = "bm1370"
    default_frequency_mhz = 525.0
    default_core_voltage_v = 1.15
    limits: ClassVar[BoardLimits] = BoardLimits(
        core_voltage_v=Range(1.0, 1.3),
        fan_percent=Range(0.0, 100.0),
        frequency_mhz=Range(400.0, 625.0),
    )
    emc2101_ideality = 0x24
    emc2101_beta = 0x00


class BitaxeSupra(BitaxeBoard):
    """Bitaxe Supra (402/403): one BM1368 on a TPS546."""

    name = "bitaxe-supra"
    chip_driver = "bm1368"
    default_frequency_mhz = 490.0
    default_core_voltage_v = 1.166
    limits: ClassVar[BoardLimits] = BoardLimits(
        core_voltage_v=Range(1.0, 1.3),
        fan_percent=Range(0.0, 100.0),
        frequency_mhz=Range(400.0, 575.0),
    )


class BitaxeUltra(BitaxeBoard):
    """Bitaxe Ultra (207): one BM1366 on a TPS546."""

    name = "bitaxe-ultra"
    chip_driver = "bm1366"
    default_frequency_mhz = 485.0
    default_core_voltage_v = 1.2
    limits: ClassVar[BoardLimits] = BoardLimits(
        core_voltage_v=Range(1.0, 1.3),
        fan_percent=Range(0.0, 100.0),
        frequency_mhz=Range(400.0, 575.0),
    )
