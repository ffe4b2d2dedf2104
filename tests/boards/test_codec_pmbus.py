"""PMBus LINEAR11/ULINEAR16 and the TPS546 sequences against the fact sheet (§3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.boards.codecs import pmbus, tps546
from stratum_client.boards.codecs.pmbus import StatusWord
from stratum_client.boards.codecs.tps546 import Command

VOUT_MODE = 0x97


@pytest.mark.parametrize(
    ("value", "word", "decoded"),
    [
        (4.8, 0xCA66, 4.796875),
        (30.0, 0xDBC0, 30.0),
        (0.25, 0xAA00, 0.25),
        (105.0, 0xEB48, 105.0),
        (3.0, 0xC300, 3.0),
        (650.0, 0x028A, 650.0),
    ],
)
def test_linear11_encodes_the_finest_rounded_word(value: float, word: int, decoded: float) -> None:
    assert pmbus.encode_linear11(value) == word
    assert pmbus.decode_linear11(word) == decoded


@pytest.mark.parametrize(
    ("word", "value"),
    [(0x0069, 105.0), (0x0003, 3.0), (0xD2E6, 11.59375), (0x028A, 650.0)],
)
def test_linear11_decodes_the_other_encoders_words(word: int, value: float) -> None:
    assert pmbus.decode_linear11(word) == value


@pytest.mark.parametrize(
    ("volts", "word", "readback"),
    [(1.15, 0x024D, 1.1504), (1.166, 0x0255, 1.1660), (1.20, 0x0266, 1.1992), (2.0, 0x0400, 2.0)],
)
def test_ulinear16_with_vout_mode_0x97(volts: float, word: int, readback: float) -> None:
    assert pmbus.vout_mode_exponent(VOUT_MODE) == -9
    assert pmbus.vout_mode_relative(VOUT_MODE)
    assert pmbus.encode_ulinear16(volts, VOUT_MODE) == word
    assert pmbus.decode_ulinear16(word, VOUT_MODE) == pytest.approx(readback, abs=1e-4)
    # The truncating encoder's word one below decodes too (1.15 → 0x024C = 1.1484 V).
    assert pmbus.decode_ulinear16(0x024C, VOUT_MODE) == pytest.approx(1.1484, abs=1e-4)


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError, match="LINEAR11"):
        pmbus.encode_linear11(float("nan"))
    with pytest.raises(ValueError, match="ULINEAR16"):
        pmbus.encode_ulinear16(200.0, VOUT_MODE)
    with pytest.raises(ValueError, match="16 bits"):
        pmbus.decode_linear11(0x10000)


@given(st.floats(-1000, 1000, allow_nan=False))
def test_linear11_round_trip_is_within_half_a_step(value: float) -> None:
    word = pmbus.encode_linear11(value)
    exponent = (word >> 11) - 32 if word >> 15 else word >> 11
    assert abs(pmbus.decode_linear11(word) - value) <= 2.0**exponent / 2 + 1e-12


def test_status_word_fault_names() -> None:
    assert pmbus.fault_names(0) == ()
    assert pmbus.fault_names(StatusWord.OFF | StatusWord.POWER_GOOD_NOT) == ()  # states only
    word = StatusWord.IOUT | StatusWord.IOUT_OC | StatusWord.OFF
    assert pmbus.fault_names(word) == ("IOUT", "IOUT_OC")
    assert StatusWord.POWER_GOOD_NOT == 1 << 11
    assert StatusWord.OFF == 0x40


def test_worked_turn_on_frames() -> None:
    """VOUT_COMMAND 1.15 V = 21 4D 02, then CLEAR_FAULTS, then OPERATION 01 80 (§1.5)."""
    frames = [w.frame for w in tps546.turn_on(1.15, VOUT_MODE)]
    assert frames == [bytes.fromhex("21 4D 02"), bytes([0x03]), bytes.fromhex("01 80")]


def test_configuration_starts_off_and_writes_every_limit() -> None:
    writes = tps546.configuration(VOUT_MODE)
    assert writes[0].frame == bytes.fromhex("01 00")  # OPERATION off first
    assert writes[1].frame == bytes.fromhex("02 1F")  # obey OPERATION
    by_command = {w.command: w.payload for w in writes}
    assert by_command[Command.VIN_ON] == (0xCA66).to_bytes(2, "little")
    assert by_command[Command.IOUT_OC_FAULT_LIMIT] == (0xDBC0).to_bytes(2, "little")
    assert by_command[Command.VOUT_SCALE_LOOP] == (0xAA00).to_bytes(2, "little")
    assert by_command[Command.FREQUENCY_SWITCH] == (0x028A).to_bytes(2, "little")
    assert by_command[Command.VOUT_MAX] == (0x0400).to_bytes(2, "little")
    assert by_command[Command.OT_FAULT_RESPONSE] == b"\xff"
    assert Command.OPERATION not in {w.command for w in writes[1:]}  # stays off


def test_device_id_block() -> None:
    block = bytes.fromhex("06 54 49 54 6D 24 41")
    assert tps546.parse_device_id(block) in tps546.DEVICE_IDS
    with pytest.raises(ValueError, match="length byte"):
        tps546.parse_device_id(bytes.fromhex("09 54 49"))
