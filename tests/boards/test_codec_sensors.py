"""EMC2101, INA260, LM75 and DS4432U conversions against the fact sheet's examples (§2, §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.boards.codecs import ds4432u, emc2101, ina260, lm75


@pytest.mark.parametrize(("percent", "duty"), [(100, 63), (70, 44), (50, 31), (25, 15), (0, 0)])
def test_fan_duty(percent: float, duty: int) -> None:
    assert emc2101.duty_from_percent(percent) == duty


def test_fan_duty_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        emc2101.duty_from_percent(101)


@pytest.mark.parametrize(("count", "rpm"), [(0x0E10, 1500), (0x0708, 3000), (0xFFFF, 0), (0, 0)])
def test_tach(count: int, rpm: int) -> None:
    assert emc2101.rpm_from_tach(count) == rpm


def test_tach_model_round_trip() -> None:
    assert emc2101.tach_from_rpm(1500) == 0x0E10
    assert emc2101.tach_from_rpm(0) == 0xFFFF


@pytest.mark.parametrize(("msb", "lsb", "celsius"), [(0x3C, 0x20, 60.125), (0x4B, 0xE0, 75.875)])
def test_external_temperature(msb: int, lsb: int, celsius: float) -> None:
    assert emc2101.decode_external_temperature(msb, lsb) == celsius
    assert emc2101.encode_external_temperature(celsius) == (msb, lsb)


@pytest.mark.parametrize(("lsb", "fault"), [(0x00, "open"), (0xE0, "short")])
def test_diode_fault_codes(lsb: int, fault: str) -> None:
    with pytest.raises(emc2101.DiodeFaultError, match=fault):
        emc2101.decode_external_temperature(0x7F, lsb)


def test_negative_external_and_internal_temperatures() -> None:
    msb, lsb = emc2101.encode_external_temperature(-5.5)
    assert emc2101.decode_external_temperature(msb, lsb) == -5.5
    assert emc2101.decode_internal_temperature(0x3C) == 60.0
    assert emc2101.decode_internal_temperature(0xF6) == -10.0


@given(st.floats(-120, 126, allow_nan=False))
def test_external_temperature_round_trip(celsius: float) -> None:
    msb, lsb = emc2101.encode_external_temperature(celsius)
    assert abs(emc2101.decode_external_temperature(msb, lsb) - celsius) <= 0.0625 + 1e-9


def test_ina260_counts() -> None:
    """1.25 mA, 1.25 mV and 10 mW per count, big-endian."""
    assert ina260.decode_current(bytes.fromhex("0320")) == pytest.approx(1.0)
    assert ina260.decode_current(bytes.fromhex("FCE0")) == pytest.approx(-1.0)
    assert ina260.decode_bus_voltage(bytes.fromhex("0FA0")) == pytest.approx(5.0)
    assert ina260.decode_power(bytes.fromhex("01F4")) == pytest.approx(5.0)
    assert ina260.encode_current(1.0) == bytes.fromhex("0320")
    with pytest.raises(ValueError, match="2 bytes"):
        ina260.decode_power(b"\x01")


def test_lm75() -> None:
    assert lm75.decode_temperature(bytes.fromhex("1900")) == 25.0
    assert lm75.decode_temperature(bytes.fromhex("FF00")) == -1.0
    assert lm75.decode_temperature(bytes.fromhex("1910")) == 25.0625
    assert lm75.encode_temperature(25.0625) == bytes.fromhex("1910")


@pytest.mark.parametrize(("volts", "code"), [(1.2, 0xC6), (1.166, 0xD0), (1.15, 0xD4)])
def test_ds4432u_trim(volts: float, code: int) -> None:
    assert ds4432u.trim_code(volts) == code


def test_ds4432u_range() -> None:
    with pytest.raises(ValueError, match="trim range"):
        ds4432u.trim_code(2.5)
