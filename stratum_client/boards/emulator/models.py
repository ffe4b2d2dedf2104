"""Register models of the TPS546, EMC2101, DS4432U and INA260, sans-IO: I2C in, bytes out.

Each model answers what the real part answers for the registers our board code uses
(:mod:`stratum_client.boards.codecs`), stores every other write so a test can read it
back, and raises :class:`Nack` where the part would not acknowledge. The TPS546 output is
on only while OPERATION is 0x80, VOUT_COMMAND lies in [VOUT_MIN, VOUT_MAX] and no fault
latched it off; its STATUS_WORD shows OFF and PGOOD# while off. The DS4432U keeps its two
output codes (0 at power-on: the buck's nominal 1.451 V); the INA260 answers its ID and
measurement registers big-endian. Measured values (VIN, IOUT, power, temperatures, tach)
are set by the board emulator from its thermal model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stratum_client.boards.codecs import ds4432u, emc2101, ina260, tps546
from stratum_client.boards.codecs.pmbus import (
    StatusWord,
    decode_linear11,
    decode_ulinear16,
    encode_linear11,
    encode_ulinear16,
)
from stratum_client.boards.codecs.tps546 import Command

__all__ = ["Ds4432uModel", "Emc2101Model", "Ina260Model", "Nack", "Tps546Model"]

VOUT_MODE = 0x97
"""ULINEAR16 exponent −9, limits relative to VOUT_COMMAND (the TPS546 default)."""
DEVICE_ID = tps546.DEVICE_IDS[0]
_BYTE_COMMANDS = frozenset(
    {
        Command.OPERATION,
        Command.ON_OFF_CONFIG,
        Command.PHASE,
        Command.VOUT_MODE,
        Command.IOUT_OC_FAULT_RESPONSE,
        Command.OT_FAULT_RESPONSE,
        Command.VIN_OV_FAULT_RESPONSE,
        Command.TON_MAX_FAULT_RESPONSE,
        Command.SYNC_CONFIG,
        Command.STATUS_VOUT,
        Command.STATUS_IOUT,
        Command.STATUS_INPUT,
        Command.STATUS_TEMPERATURE,
        Command.STATUS_CML,
    }
)
_READ_ONLY = frozenset(
    {
        Command.VOUT_MODE,
        Command.STATUS_WORD,
        Command.READ_VIN,
        Command.READ_VOUT,
        Command.READ_IOUT,
        Command.READ_TEMPERATURE_1,
        Command.READ_POUT,
        Command.IC_DEVICE_ID,
    }
)
_FAULT_BITS = StatusWord.IOUT_OC | StatusWord.VOUT_OV | StatusWord.TEMPERATURE | StatusWord.VIN_UV


class Nack(Exception):  # noqa: N818 - it is what the bus says
    """The device did not acknowledge."""


@dataclass
class Tps546Model:
    """The TPS546D24A as the board code drives it."""

    vin_v: float = 5.0
    iout_a: float = 0.0
    temperature_c: float = 25.0
    words: dict[int, int] = field(default_factory=dict)
    """Every byte/word register by command code (bytes stored as 0..255)."""
    latched: int = 0
    """STATUS_WORD fault bits latched until CLEAR_FAULTS (a latched fault keeps it off)."""

    def __post_init__(self) -> None:
        self.words.setdefault(Command.OPERATION, tps546.OPERATION_OFF)
        self.words.setdefault(Command.VOUT_COMMAND, encode_ulinear16(1.2, VOUT_MODE))
        self.words.setdefault(Command.VOUT_MIN, encode_ulinear16(0.5, VOUT_MODE))
        self.words.setdefault(Command.VOUT_MAX, encode_ulinear16(2.0, VOUT_MODE))

    # -- state -----------------------------------------------------------------------------

    def volts(self, command: Command) -> float:
        return decode_ulinear16(self.words.get(command, 0), VOUT_MODE)

    @property
    def vout_command(self) -> float:
        return self.volts(Command.VOUT_COMMAND)

    @property
    def output_on(self) -> bool:
        commanded = (
            self.volts(Command.VOUT_MIN) <= self.vout_command <= self.volts(Command.VOUT_MAX)
        )
        on = self.words[Command.OPERATION] == tps546.OPERATION_ON
        return on and commanded and not self.latched & _FAULT_BITS

    @property
    def vout(self) -> float:
        return self.vout_command if self.output_on else 0.0

    def status_word(self) -> int:
        word = self.latched
        if not self.output_on:
            word |= StatusWord.OFF | StatusWord.POWER_GOOD_NOT
        return word

    def latch(self, bits: int) -> None:
        """A fault: the bits latch, and a latched fault switches the output off."""
        self.latched |= bits

    # -- bus -------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            raise Nack
        command, payload = data[0], data[1:]
        if command == Command.CLEAR_FAULTS and not payload:
            self.latched = 0
            return
        if command in _READ_ONLY or command not in set(Command):
            raise Nack
        size = 1 if command in _BYTE_COMMANDS else 2
        if len(payload) != size:
            raise Nack
        self.words[command] = int.from_bytes(payload, "little")

    def write_read(self, data: bytes, count: int) -> bytes:
        if len(data) != 1:
            raise Nack
        command = data[0]
        if command == Command.IC_DEVICE_ID:
            return (bytes([len(DEVICE_ID)]) + DEVICE_ID + bytes(count))[:count]
        value = self._value(command)
        if value is None:
            raise Nack
        return value.to_bytes(2, "little")[:count].ljust(count, b"\0")

    def _value(self, command: int) -> int | None:
        amps = self.iout_a if self.output_on else 0.0
        measured: dict[int, Callable[[], int]] = {
            Command.VOUT_MODE: lambda: VOUT_MODE,
            Command.STATUS_WORD: self.status_word,
            Command.READ_VIN: lambda: encode_linear11(self.vin_v),
            Command.READ_VOUT: lambda: encode_ulinear16(self.vout, VOUT_MODE),
            Command.READ_IOUT: lambda: encode_linear11(amps),
            Command.READ_TEMPERATURE_1: lambda: encode_linear11(round(self.temperature_c, 1)),
            Command.READ_POUT: lambda: encode_linear11(self.vout * amps),
        }
        read = measured.get(command)
        return read() if read is not None else self.words.get(command)

    def linear(self, command: Command) -> float:
        """A written LINEAR11 setting's value (for tests)."""
        return decode_linear11(self.words[command])


@dataclass
class Emc2101Model:
    """The EMC2101 with the ASIC diode on its external channel."""

    rpm: float = 0.0
    external_c: float = 25.0
    internal_c: float = 25.0
    diode_open: bool = False
    """No diode on the external channel (the DS4432U revisions): it reads as open."""
    registers: dict[int, int] = field(default_factory=dict)
    _latched: int = 0
    _pointer: int = 0

    def __post_init__(self) -> None:
        self.registers.setdefault(emc2101.Register.CONFIG, 0x00)
        self.registers.setdefault(emc2101.Register.FAN_CONFIG, 0x20)
        self.registers.setdefault(emc2101.Register.FAN_SETTING, 0x00)

    @property
    def duty_pct(self) -> float:
        return emc2101.percent_from_duty(self.registers[emc2101.Register.FAN_SETTING])

    def write(self, data: bytes) -> None:
        if not data:
            raise Nack
        self._pointer = data[0]
        if len(data) == 2:
            self.registers[data[0]] = data[1]
        elif len(data) > 2:
            raise Nack

    def write_read(self, data: bytes, count: int) -> bytes:
        self.write(data[:1])
        return bytes(self._read_register(self._pointer) for _ in range(count))

    def _read_register(self, register: int) -> int:
        reg = emc2101.Register
        fixed: dict[int, int] = {
            reg.MANUFACTURER_ID: emc2101.MANUFACTURER_ID,
            reg.PRODUCT_ID: 0x16,
            reg.INTERNAL_TEMP: round(self.internal_c) & 0xFF,
        }
        if register in fixed:
            return fixed[register]
        if register == reg.EXTERNAL_TEMP_MSB:
            msb, self._latched = self._external()
            return msb
        if register == reg.TACH_LSB:
            count = emc2101.tach_from_rpm(self.rpm)
            self._latched = count >> 8
            return count & 0xFF
        if register in (reg.EXTERNAL_TEMP_LSB, reg.TACH_MSB):
            return self._latched
        return self.registers.get(register, 0)

    def _external(self) -> tuple[int, int]:
        if self.diode_open:
            raw = int(emc2101.DiodeFault.OPEN)
            return raw >> 3, (raw & 0x7) << 5
        return emc2101.encode_external_temperature(self.external_c)


@dataclass
class Ds4432uModel:
    """The DS4432U current DAC: OUT0 (0xF8) and OUT1 (0xF9), one byte each."""

    codes: dict[int, int] = field(
        default_factory=lambda: {ds4432u.OUT0_REGISTER: 0, ds4432u.OUT0_REGISTER + 1: 0}
    )
    _pointer: int = ds4432u.OUT0_REGISTER

    @property
    def out0(self) -> int:
        return self.codes[ds4432u.OUT0_REGISTER]

    def write(self, data: bytes) -> None:
        if not data or data[0] not in self.codes or len(data) > 2:
            raise Nack
        self._pointer = data[0]
        if len(data) == 2:
            self.codes[data[0]] = data[1]

    def write_read(self, data: bytes, count: int) -> bytes:
        if data:
            self.write(data[:1])
        return bytes([self.codes[self._pointer]]) * count


_INA260_CONFIG_DEFAULT = 0x6127
_INA260_DIE_ID = 0x2270


@dataclass
class Ina260Model:
    """The INA260 on the board's 5 V input: 16-bit big-endian registers."""

    volts: float = 0.0
    amps: float = 0.0
    configuration: int = _INA260_CONFIG_DEFAULT
    _pointer: int = 0

    @property
    def watts(self) -> float:
        return self.volts * abs(self.amps)

    def write(self, data: bytes) -> None:
        if not data or data[0] not in set(ina260.Register) or len(data) not in (1, 3):
            raise Nack
        self._pointer = data[0]
        if len(data) == 3:
            if data[0] != ina260.Register.CONFIGURATION:
                raise Nack
            self.configuration = int.from_bytes(data[1:], "big")

    def write_read(self, data: bytes, count: int) -> bytes:
        if data:
            self.write(data[:1])
        return self._register(self._pointer)[:count].ljust(count, b"\0")

    def _register(self, register: int) -> bytes:
        reg = ina260.Register
        values: dict[int, bytes] = {
            reg.CONFIGURATION: self.configuration.to_bytes(2, "big"),
            reg.CURRENT: ina260.encode_current(self.amps),
            reg.BUS_VOLTAGE: ina260.encode_bus_voltage(self.volts),
            reg.POWER: ina260.encode_power(self.watts),
            reg.MANUFACTURER_ID: ina260.MANUFACTURER_ID.to_bytes(2, "big"),
            reg.DIE_ID: _INA260_DIE_ID.to_bytes(2, "big"),
        }
        return values[register]
