"""PMBus number formats and status bits (as the TPS546D24A uses them).

* **LINEAR11**: a 16-bit word, two's-complement 5-bit exponent in bits 15:11 and
  two's-complement 11-bit mantissa in bits 10:0; value = mantissa × 2^exponent. Two
  encoders are in use on these boards (one truncates with the finest exponent, one rounds),
  giving different but equivalent words for integers, so decoding accepts any word and
  :func:`encode_linear11` picks the finest exponent that fits, rounded.
* **ULINEAR16**: an unsigned 16-bit mantissa whose exponent is VOUT_MODE bits 4:0
  (two's complement; 0x97 → −9, i.e. 1/512 V per step). Bit 7 of VOUT_MODE marks the
  VOUT limit registers as relative to VOUT_COMMAND.
* Words travel little-endian after the command byte.
"""

from __future__ import annotations

import enum
import math

__all__ = [
    "FAULT_BITS",
    "StatusWord",
    "decode_linear11",
    "decode_ulinear16",
    "encode_linear11",
    "encode_ulinear16",
    "fault_names",
    "vout_mode_exponent",
    "vout_mode_relative",
]

_MANTISSA_MIN, _MANTISSA_MAX = -1024, 1023


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_linear11(word: int) -> float:
    """A LINEAR11 word's value."""
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"LINEAR11 word {word} does not fit 16 bits")
    exponent = _signed(word >> 11, 5)
    mantissa = _signed(word & 0x7FF, 11)
    return math.ldexp(mantissa, exponent)


def encode_linear11(value: float) -> int:
    """The LINEAR11 word closest to ``value``, with the finest exponent that fits."""
    if not math.isfinite(value):
        raise ValueError(f"LINEAR11 cannot carry {value}")
    for exponent in range(-16, 16):
        mantissa = round(math.ldexp(value, -exponent))
        if _MANTISSA_MIN <= mantissa <= _MANTISSA_MAX:
            return (exponent & 0x1F) << 11 | (mantissa & 0x7FF)
    raise ValueError(f"{value} is beyond LINEAR11's range")


def vout_mode_exponent(vout_mode: int) -> int:
    """The ULINEAR16 exponent VOUT_MODE carries (bits 4:0, two's complement)."""
    return _signed(vout_mode & 0x1F, 5)


def vout_mode_relative(vout_mode: int) -> bool:
    """Whether VOUT limit registers are fractions of VOUT_COMMAND (bit 7)."""
    return bool(vout_mode & 0x80)


def decode_ulinear16(word: int, vout_mode: int) -> float:
    """A ULINEAR16 word's value under ``vout_mode``."""
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"ULINEAR16 word {word} does not fit 16 bits")
    return math.ldexp(word, vout_mode_exponent(vout_mode))


def encode_ulinear16(value: float, vout_mode: int) -> int:
    """The ULINEAR16 word closest to ``value`` under ``vout_mode`` (rounded)."""
    word = round(math.ldexp(value, -vout_mode_exponent(vout_mode))) if math.isfinite(value) else -1
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"{value} does not fit ULINEAR16 with VOUT_MODE 0x{vout_mode:02X}")
    return word


class StatusWord(enum.IntFlag):
    """STATUS_WORD (0x79) bits."""

    NONE_OF_THE_ABOVE = 1 << 0
    CML = 1 << 1
    TEMPERATURE = 1 << 2
    VIN_UV = 1 << 3
    IOUT_OC = 1 << 4
    VOUT_OV = 1 << 5
    OFF = 1 << 6
    BUSY = 1 << 7
    UNKNOWN = 1 << 8
    OTHER = 1 << 9
    FANS = 1 << 10
    POWER_GOOD_NOT = 1 << 11
    """Set while the output is *not* in regulation."""
    MFR = 1 << 12
    INPUT = 1 << 13
    IOUT = 1 << 14
    VOUT = 1 << 15


FAULT_BITS = (
    StatusWord.TEMPERATURE
    | StatusWord.VIN_UV
    | StatusWord.IOUT_OC
    | StatusWord.VOUT_OV
    | StatusWord.VOUT
    | StatusWord.IOUT
    | StatusWord.INPUT
)
"""Bits that mean the regulator saw a fault (not OFF, PGOOD# or CML: those are states or a
bus hiccup, reported but not treated as a regulator fault)."""


def fault_names(status: int) -> tuple[str, ...]:
    """The names of the fault bits set in a STATUS_WORD, highest bit first."""
    word = StatusWord(status & 0xFFFF)
    return tuple(
        str(flag.name) for flag in sorted(StatusWord, reverse=True) if flag & FAULT_BITS & word
    )
