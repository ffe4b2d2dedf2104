"""INA260 power monitor at 0x40 (older Bitaxe Ultra/Supra revisions): big-endian registers.

Current (0x01) is a signed 16-bit count of 1.25 mA, bus voltage (0x02) an unsigned count
of 1.25 mV and power (0x03) an unsigned count of 10 mW.
"""

from __future__ import annotations

import enum

__all__ = [
    "ADDRESS",
    "MANUFACTURER_ID",
    "Register",
    "decode_bus_voltage",
    "decode_current",
    "decode_power",
    "encode_bus_voltage",
    "encode_current",
    "encode_power",
]

ADDRESS = 0x40
MANUFACTURER_ID = 0x5449
"""``TI`` in ASCII, register 0xFE."""
_CURRENT_LSB = 1.25e-3
_VOLTAGE_LSB = 1.25e-3
_POWER_LSB = 10e-3


class Register(enum.IntEnum):
    CONFIGURATION = 0x00
    CURRENT = 0x01
    BUS_VOLTAGE = 0x02
    POWER = 0x03
    MANUFACTURER_ID = 0xFE
    DIE_ID = 0xFF


def _word(data: bytes) -> int:
    if len(data) != 2:
        raise ValueError(f"INA260 register reads are 2 bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def decode_current(data: bytes) -> float:
    """Amperes from the current register (signed)."""
    _word(data)
    return int.from_bytes(data, "big", signed=True) * _CURRENT_LSB


def decode_bus_voltage(data: bytes) -> float:
    """Volts from the bus-voltage register."""
    return _word(data) * _VOLTAGE_LSB


def decode_power(data: bytes) -> float:
    """Watts from the power register."""
    return _word(data) * _POWER_LSB


def encode_current(amperes: float) -> bytes:
    return max(-0x8000, min(0x7FFF, round(amperes / _CURRENT_LSB))).to_bytes(2, "big", signed=True)


def encode_bus_voltage(volts: float) -> bytes:
    return max(0, min(0xFFFF, round(volts / _VOLTAGE_LSB))).to_bytes(2, "big")


def encode_power(watts: float) -> bytes:
    return max(0, min(0xFFFF, round(watts / _POWER_LSB))).to_bytes(2, "big")
