"""The board emulator's sans-IO parts: register models, thermal model, bridge framing.

Expected bytes are the worked frames of the bitaxe-raw protocol (shared boards.md §1.5)
and the datasheet formats the codecs implement; the thermal checks are the behaviours the
model promises (rises with power, falls with fan duty, follows ambient).
"""

from __future__ import annotations

import pytest

from stratum_client.boards.codecs import bitaxe_raw as raw
from stratum_client.boards.codecs import emc2101
from stratum_client.boards.codecs.pmbus import StatusWord, decode_ulinear16, fault_names
from stratum_client.boards.codecs.tps546 import Command, configuration, turn_on
from stratum_client.boards.emulator import PROFILES, EmulatedBitaxe, SensorFault, ThermalParams
from stratum_client.boards.emulator.models import VOUT_MODE, Emc2101Model, Nack, Tps546Model
from stratum_client.boards.emulator.thermal import ThermalModel


def test_tps546_output_is_on_only_after_operation_on_with_vout_in_range() -> None:
    tps = Tps546Model()
    for write in configuration(VOUT_MODE):
        tps.write(write.frame)
    assert not tps.output_on
    assert tps.status_word() & StatusWord.OFF
    for write in turn_on(1.15, VOUT_MODE):
        tps.write(write.frame)
    assert tps.output_on
    assert tps.write_read(bytes([Command.READ_VOUT]), 2) == bytes.fromhex("4D 02")
    assert decode_ulinear16(0x024D, VOUT_MODE) == pytest.approx(1.1504, abs=1e-4)
    tps.write(bytes([Command.VOUT_COMMAND]) + (0x0600).to_bytes(2, "little"))  # 3 V > VOUT_MAX
    assert not tps.output_on


def test_tps546_latched_fault_turns_off_until_cleared() -> None:
    tps = Tps546Model()
    for write in turn_on(1.2, VOUT_MODE):
        tps.write(write.frame)
    tps.latch(StatusWord.IOUT_OC | StatusWord.IOUT)
    assert not tps.output_on
    assert fault_names(tps.status_word()) == ("IOUT", "IOUT_OC")
    tps.write(bytes([Command.CLEAR_FAULTS]))
    assert tps.output_on


def test_tps546_nacks_writes_to_read_only_and_wrong_sizes() -> None:
    tps = Tps546Model()
    with pytest.raises(Nack):
        tps.write(bytes([Command.READ_VOUT, 0, 0]))
    with pytest.raises(Nack):
        tps.write(bytes([Command.OPERATION, 0x80, 0x00]))


def test_emc2101_tach_and_diode_latch_in_register_order() -> None:
    emc = Emc2101Model(rpm=3000.0, external_c=60.125)
    lsb = emc.write_read(bytes([emc2101.Register.TACH_LSB]), 1)[0]
    msb = emc.write_read(bytes([emc2101.Register.TACH_MSB]), 1)[0]
    assert msb << 8 | lsb == 0x0708  # 5 400 000 / 3000
    high = emc.write_read(bytes([emc2101.Register.EXTERNAL_TEMP_MSB]), 1)[0]
    low = emc.write_read(bytes([emc2101.Register.EXTERNAL_TEMP_LSB]), 1)[0]
    assert (high, low) == (0x3C, 0x20)


def test_thermal_model_rises_with_power_falls_with_fan_and_follows_ambient() -> None:
    def settle(power: float, fan: float, ambient: float = 25.0) -> float:
        model = ThermalModel(ThermalParams(ambient_c=ambient), now=0.0)
        model.step(600.0, power, power / 1.15, fan)
        return model.asic_c

    assert settle(18.0, 50.0) > settle(10.0, 50.0)
    assert settle(18.0, 100.0) < settle(18.0, 50.0)
    assert settle(18.0, 50.0, ambient=35.0) == pytest.approx(settle(18.0, 50.0) + 10.0)
    assert settle(18.0, 0.0) > 75.0  # a stalled fan overheats a running chip


def _request(board: EmulatedBitaxe, frame: str, now: float = 1.0) -> bytes:
    return board.receive(bytes.fromhex(frame), now)


def test_bridge_answers_the_documented_v0_frames() -> None:
    board = EmulatedBitaxe(PROFILES["bitaxe-gamma"], 0.0)
    assert _request(board, "0A 00 00 00 05 10 A0 86 01 00") == bytes.fromhex("04 00 00 A0 86 01 00")
    device_id = _request(board, "09 00 01 00 05 40 24 AD 07")
    assert device_id == bytes.fromhex("07 00 01 06 54 49 54 6D 24 41")
    assert _request(board, "09 00 02 00 05 20 24 01 00") == bytes.fromhex("01 00 02 02")
    assert _request(board, "07 00 09 00 06 00 00") == bytes.fromhex("01 00 09 00")
    assert _request(board, "07 00 0A 00 06 00 01") == bytes.fromhex("01 00 0A 01")
    assert board.reset_released


def test_bridge_v1_framing_and_nack_and_unknown_device() -> None:
    board = EmulatedBitaxe(PROFILES["bitaxe-gamma"], 0.0, framing=raw.Framing.V1)
    assert _request(board, "06 00 0B 00 06 00") == bytes.fromhex("05 00 0B 00 00")
    nack = _request(board, "09 00 0C 00 05 40 50 00 01")  # nothing at 0x50
    parsed = raw.split_reply(nack, raw.Framing.V1, 1)
    assert parsed is not None
    reply, _ = parsed
    assert isinstance(reply, raw.ErrorReply)
    assert (reply.id, reply.code) == (0x0C, raw.ErrorCode.ERROR)


def test_sensor_faults_are_nack_garbage_or_implausible() -> None:
    board = EmulatedBitaxe(PROFILES["bitaxe-gamma"], 0.0)
    read_msb = "09 00 01 00 05 40 4C 01 01"
    board.faults.sensors[emc2101.ADDRESS] = SensorFault.NACK
    assert _request(board, read_msb)[3] == raw.ErrorCode.ERROR
    board.faults.sensors[emc2101.ADDRESS] = SensorFault.GARBAGE
    with pytest.raises(raw.FramingError):
        raw.split_reply(_request(board, read_msb), raw.Framing.V0, 1)
    board.faults.sensors[emc2101.ADDRESS] = SensorFault.IMPLAUSIBLE
    assert _request(board, read_msb) == bytes.fromhex("01 00 01 7E")  # 126.875 °C
    assert (board.faults.nacks_sent, board.faults.garbage_sent) == (1, 1)


def test_chain_power_needs_vout_in_range_and_reset_released() -> None:
    board = EmulatedBitaxe(PROFILES["bitaxe-gamma"], 0.0)
    losses: list[float] = []
    board.on_power_loss = lambda: losses.append(1.0)
    _request(board, "07 00 01 00 06 00 01")  # reset released first: still no power
    assert not board.chain_powered
    for write in (*configuration(VOUT_MODE), *turn_on(1.15, VOUT_MODE)):
        board.receive(raw.encode_request(raw.i2c_write(2, 0x24, write.frame)[0]), 2.0)
    assert board.chain_powered
    _request(board, "07 00 03 00 06 00 00", now=3.0)  # reset asserted
    assert not board.chain_powered
    assert losses == [1.0]
