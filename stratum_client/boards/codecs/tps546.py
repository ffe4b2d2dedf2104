"""TPS546D24A core regulator over PMBus: command codes, the init sequence, telemetry.

Everything here turns intentions into PMBus transactions (command byte plus payload) and
replies into numbers; the async :class:`~stratum_client.boards.peripherals.Tps546` sends
them. The configuration values are the ones the Bitaxe firmware and host tools write to
these boards (limits relative to VOUT_COMMAND, 650 kHz switching, 25/30 A current limits,
105/145 °C temperature limits).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .pmbus import encode_linear11, encode_ulinear16

__all__ = [
    "ADDRESS",
    "DEVICE_IDS",
    "OPERATION_OFF",
    "OPERATION_ON",
    "Command",
    "Format",
    "OnOffConfig",
    "Setting",
    "Write",
    "configuration",
    "encode_write",
    "parse_device_id",
    "turn_on",
]

ADDRESS = 0x24
OPERATION_OFF = 0x00
OPERATION_ON = 0x80
DEVICE_IDS = (
    bytes.fromhex("5449546D2441"),  # TPS546D24A
    bytes.fromhex("5449546D2462"),  # TPS546D24S
    bytes.fromhex("5449546B2441"),
)


class Command(enum.IntEnum):
    OPERATION = 0x01
    ON_OFF_CONFIG = 0x02
    CLEAR_FAULTS = 0x03
    PHASE = 0x04
    VOUT_MODE = 0x20
    VOUT_COMMAND = 0x21
    VOUT_MAX = 0x24
    VOUT_MARGIN_HIGH = 0x25
    VOUT_MARGIN_LOW = 0x26
    VOUT_SCALE_LOOP = 0x29
    VOUT_MIN = 0x2B
    FREQUENCY_SWITCH = 0x33
    VIN_ON = 0x35
    VIN_OFF = 0x36
    VOUT_OV_FAULT_LIMIT = 0x40
    VOUT_OV_WARN_LIMIT = 0x42
    VOUT_UV_WARN_LIMIT = 0x43
    VOUT_UV_FAULT_LIMIT = 0x44
    IOUT_OC_FAULT_LIMIT = 0x46
    IOUT_OC_FAULT_RESPONSE = 0x47
    IOUT_OC_WARN_LIMIT = 0x4A
    OT_FAULT_LIMIT = 0x4F
    OT_FAULT_RESPONSE = 0x50
    OT_WARN_LIMIT = 0x51
    VIN_OV_FAULT_LIMIT = 0x55
    VIN_OV_FAULT_RESPONSE = 0x56
    TON_DELAY = 0x60
    TON_RISE = 0x61
    TON_MAX_FAULT_LIMIT = 0x62
    TON_MAX_FAULT_RESPONSE = 0x63
    TOFF_DELAY = 0x64
    TOFF_FALL = 0x65
    STATUS_WORD = 0x79
    STATUS_VOUT = 0x7A
    STATUS_IOUT = 0x7B
    STATUS_INPUT = 0x7C
    STATUS_TEMPERATURE = 0x7D
    STATUS_CML = 0x7E
    READ_VIN = 0x88
    READ_VOUT = 0x8B
    READ_IOUT = 0x8C
    READ_TEMPERATURE_1 = 0x8D
    READ_POUT = 0x96
    IC_DEVICE_ID = 0xAD
    SYNC_CONFIG = 0xE4
    STACK_CONFIG = 0xEC
    PIN_DETECT_OVERRIDE = 0xEE


class Format(enum.Enum):
    """How a command's payload is encoded."""

    SEND = "send byte"
    BYTE = "byte"
    WORD = "word"
    LINEAR11 = "linear11"
    ULINEAR16 = "ulinear16"


class OnOffConfig(enum.IntFlag):
    """ON_OFF_CONFIG (0x02) bits."""

    TURN_OFF_AT_ONCE = 0x01
    CONTROL_ACTIVE_HIGH = 0x02
    CONTROL_PIN = 0x04
    OBEY_OPERATION = 0x08
    POWER_UP_ONLY_WHEN_COMMANDED = 0x10


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration write: a command, its format and the value in natural units."""

    command: Command
    format: Format
    value: float = 0


@dataclass(frozen=True, slots=True)
class Write:
    """A PMBus write as bytes after the address: command byte then payload."""

    command: Command
    payload: bytes

    @property
    def frame(self) -> bytes:
        return bytes([self.command]) + self.payload


def encode_write(setting: Setting, vout_mode: int) -> Write:
    """The bytes for ``setting`` (ULINEAR16 values need the device's VOUT_MODE)."""
    match setting.format:
        case Format.SEND:
            payload = b""
        case Format.BYTE:
            payload = bytes([int(setting.value) & 0xFF])
        case Format.WORD:
            payload = int(setting.value).to_bytes(2, "little")
        case Format.LINEAR11:
            payload = encode_linear11(setting.value).to_bytes(2, "little")
        case Format.ULINEAR16:
            payload = encode_ulinear16(setting.value, vout_mode).to_bytes(2, "little")
    return Write(setting.command, payload)


_L11, _U16, _BYTE, _WORD = Format.LINEAR11, Format.ULINEAR16, Format.BYTE, Format.WORD

_CONFIGURATION: tuple[Setting, ...] = (
    Setting(Command.PHASE, _BYTE, 0x00),
    Setting(Command.FREQUENCY_SWITCH, _L11, 650),
    Setting(Command.VIN_ON, _L11, 4.8),
    Setting(Command.VIN_OFF, _L11, 4.5),
    Setting(Command.VIN_OV_FAULT_LIMIT, _L11, 6.5),
    Setting(Command.VIN_OV_FAULT_RESPONSE, _BYTE, 0xB7),
    Setting(Command.VOUT_SCALE_LOOP, _L11, 0.25),
    Setting(Command.VOUT_MAX, _U16, 2.0),
    Setting(Command.VOUT_MIN, _U16, 1.0),
    Setting(Command.VOUT_OV_FAULT_LIMIT, _U16, 1.25),
    Setting(Command.VOUT_OV_WARN_LIMIT, _U16, 1.16),
    Setting(Command.VOUT_MARGIN_HIGH, _U16, 1.10),
    Setting(Command.VOUT_MARGIN_LOW, _U16, 0.90),
    Setting(Command.VOUT_UV_WARN_LIMIT, _U16, 0.90),
    Setting(Command.VOUT_UV_FAULT_LIMIT, _U16, 0.75),
    Setting(Command.IOUT_OC_WARN_LIMIT, _L11, 25),
    Setting(Command.IOUT_OC_FAULT_LIMIT, _L11, 30),
    Setting(Command.IOUT_OC_FAULT_RESPONSE, _BYTE, 0xC0),
    Setting(Command.OT_WARN_LIMIT, _L11, 105),
    Setting(Command.OT_FAULT_LIMIT, _L11, 145),
    Setting(Command.OT_FAULT_RESPONSE, _BYTE, 0xFF),
    Setting(Command.TON_DELAY, _L11, 0),
    Setting(Command.TON_RISE, _L11, 3),
    Setting(Command.TON_MAX_FAULT_LIMIT, _L11, 0),
    Setting(Command.TON_MAX_FAULT_RESPONSE, _BYTE, 0x3B),
    Setting(Command.TOFF_DELAY, _L11, 0),
    Setting(Command.TOFF_FALL, _L11, 0),
    Setting(Command.PIN_DETECT_OVERRIDE, _WORD, 0xFFFF),
)


def configuration(vout_mode: int) -> list[Write]:
    """Output off, obey OPERATION, then every limit; the output stays off afterwards."""
    first = [
        Setting(Command.OPERATION, _BYTE, OPERATION_OFF),
        Setting(Command.ON_OFF_CONFIG, _BYTE, 0x1F),
    ]
    return [encode_write(s, vout_mode) for s in (*first, *_CONFIGURATION)]


def turn_on(volts: float, vout_mode: int) -> list[Write]:
    """VOUT_COMMAND, CLEAR_FAULTS, then OPERATION on (read OPERATION back afterwards)."""
    return [
        encode_write(Setting(Command.VOUT_COMMAND, _U16, volts), vout_mode),
        encode_write(Setting(Command.CLEAR_FAULTS, Format.SEND), vout_mode),
        encode_write(Setting(Command.OPERATION, _BYTE, OPERATION_ON), vout_mode),
    ]


def parse_device_id(block: bytes) -> bytes:
    """IC_DEVICE_ID's block read (length byte first) → the ID bytes; ValueError if odd."""
    if not block or block[0] + 1 > len(block) or block[0] == 0:
        raise ValueError(f"IC_DEVICE_ID block {block.hex(' ')} has no valid length byte")
    return bytes(block[1 : 1 + block[0]])
