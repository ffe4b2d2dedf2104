"""EMC2101 fan controller and temperature sensor at 0x4C: registers and conversions.

* Fan duty is a 6-bit setting 0–63 (FAN_SETTING, 0x4C) in direct mode (FAN_CONFIG 0x23);
  a percentage maps to floor(63 × pct / 100).
* The tachometer is a 16-bit count read LSB (0x46) first, which latches the MSB (0x47);
  RPM = 5 400 000 / count, and 0xFFFF (no pulses) or 0 reads as a stopped fan.
* The external diode (the ASIC's) is 11 bits, 0.125 °C: MSB (0x01) first, which latches
  the LSB (0x10) whose top 3 bits are the fraction. Raw 0x3F8 means the diode is open and
  0x3FF that it is shorted: both are faults, never temperatures.
* The internal temperature (0x00) is a signed byte in °C.
"""

from __future__ import annotations

import enum
import math

__all__ = [
    "ADDRESS",
    "CONFIG_TACH_ENABLE",
    "FAN_CONFIG_DIRECT",
    "MANUFACTURER_ID",
    "PRODUCT_IDS",
    "TACH_STOPPED",
    "DiodeFault",
    "DiodeFaultError",
    "Register",
    "decode_external_temperature",
    "decode_internal_temperature",
    "duty_from_percent",
    "encode_external_temperature",
    "percent_from_duty",
    "rpm_from_tach",
    "tach_from_rpm",
]

ADDRESS = 0x4C
MANUFACTURER_ID = 0x5D
PRODUCT_IDS = frozenset({0x16, 0x28})
"""EMC2101 and EMC2101-R."""
CONFIG_TACH_ENABLE = 0x04
FAN_CONFIG_DIRECT = 0x23
"""Direct duty setting (look-up table off), the clock select both anchors write."""
TACH_STOPPED = 0xFFFF
_TACH_CONSTANT = 5_400_000
_DUTY_MAX = 63


class Register(enum.IntEnum):
    INTERNAL_TEMP = 0x00
    EXTERNAL_TEMP_MSB = 0x01
    CONFIG = 0x03
    EXTERNAL_TEMP_LSB = 0x10
    IDEALITY = 0x17
    BETA = 0x18
    TACH_LSB = 0x46
    TACH_MSB = 0x47
    FAN_CONFIG = 0x4A
    FAN_SETTING = 0x4C
    PRODUCT_ID = 0xFD
    MANUFACTURER_ID = 0xFE
    REVISION = 0xFF


class DiodeFault(enum.IntEnum):
    """Raw external-diode readings that report a wiring fault, not a temperature."""

    OPEN = 0x3F8
    SHORT = 0x3FF


class DiodeFaultError(ValueError):
    """The external diode reads as open or shorted."""

    def __init__(self, fault: DiodeFault) -> None:
        super().__init__(f"external diode {fault.name.lower()} (raw 0x{int(fault):03X})")
        self.fault = fault


def duty_from_percent(percent: float) -> int:
    """FAN_SETTING for ``percent`` (0–100): floor(63 × pct / 100)."""
    if not (math.isfinite(percent) and 0 <= percent <= 100):
        raise ValueError(f"fan duty {percent} % is outside 0..100")
    return math.floor(_DUTY_MAX * percent / 100 + 1e-9)


def percent_from_duty(duty: int) -> float:
    """The percentage a FAN_SETTING value drives (the low 6 bits count)."""
    return (duty & 0x3F) * 100 / _DUTY_MAX


def rpm_from_tach(count: int) -> int:
    """RPM from the 16-bit tach count; a stopped fan (0xFFFF, or 0) reads 0."""
    if count in (0, TACH_STOPPED):
        return 0
    return _TACH_CONSTANT // count


def tach_from_rpm(rpm: float) -> int:
    """The tach count a fan at ``rpm`` produces (emulation); 0 RPM → 0xFFFF."""
    if rpm <= _TACH_CONSTANT / TACH_STOPPED:
        return TACH_STOPPED
    return min(TACH_STOPPED - 1, max(1, round(_TACH_CONSTANT / rpm)))


def decode_external_temperature(msb: int, lsb: int) -> float:
    """°C from the diode's MSB and LSB registers; :class:`DiodeFaultError` on a fault code."""
    raw = (msb & 0xFF) << 3 | (lsb & 0xFF) >> 5
    if raw in (DiodeFault.OPEN, DiodeFault.SHORT):
        raise DiodeFaultError(DiodeFault(raw))
    signed = raw - 0x800 if raw & 0x400 else raw
    return signed * 0.125


def encode_external_temperature(celsius: float) -> tuple[int, int]:
    """(MSB, LSB) for a temperature (emulation), clamped below the fault codes."""
    raw = round(celsius * 8)
    raw = max(-0x400, min(raw, int(DiodeFault.OPEN) - 1))
    raw &= 0x7FF
    return raw >> 3, (raw & 0x7) << 5


def decode_internal_temperature(value: int) -> float:
    """°C from the internal-temperature register (a signed byte)."""
    return float(value - 0x100 if value & 0x80 else value)
