"""An emulated Bitaxe Gamma on two ptys, driven by the real board class and chip driver.

The order checks read the emulator's own record of control requests and data-port
writes; the register checks read the emulator's TPS546, EMC2101 and reset line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from board_rig import Rig, chain_driver, make_board

from stratum_client.boards.base import BoardSpec
from stratum_client.boards.codecs.bitaxe_raw import Framing
from stratum_client.boards.codecs.pmbus import StatusWord
from stratum_client.boards.codecs.tps546 import OPERATION_OFF, Command
from stratum_client.boards.emulator.board import TrafficEntry
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.boards.errors import (
    BoardError,
    BoardLimitError,
    BoardNotFoundError,
    ControlLinkError,
    NotBitaxeRawError,
    PeripheralError,
)
from stratum_client.boards.registry import load_board
from stratum_client.boards.runner import BoardRunner
from stratum_client.errors import DriverError


def first(traffic: list[TrafficEntry], prefix: str, *, port: str = "control") -> int:
    return next(e.seq for e in traffic if e.port == port and e.what.startswith(prefix) and e.ok)


async def test_power_up_traffic_follows_the_documented_order(rig: Rig) -> None:
    async with rig.board:
        await rig.board.power_up()
        driver = chain_driver(rig.board)
        async with driver:
            assert driver.frequency_mhz == pytest.approx(525.0, abs=7)
    traffic = list(rig.emulator.board.traffic)
    order = [
        first(traffic, "GPIO PIN0 00"),  # reset held
        first(traffic, "I2C WRITE_READ 24 20"),  # VOUT_MODE read
        first(traffic, "I2C WRITE 24 02 1F"),  # ON_OFF_CONFIG: obey OPERATION
        first(traffic, "I2C WRITE 24 EE FF FF"),  # last limit written
        first(traffic, "I2C WRITE 24 21 4D 02"),  # VOUT_COMMAND 1.15 V
        first(traffic, "I2C WRITE 24 01 80"),  # output on
        first(traffic, "GPIO PIN0 01"),  # reset released
        first(traffic, "chip bytes", port="data"),  # chip init
    ]
    assert order == sorted(order)
    on = first(traffic, "I2C WRITE 24 01 80")
    limits = [e.seq for e in traffic if e.what.startswith(("I2C WRITE 24 4F", "I2C WRITE 24 40"))]
    assert limits
    assert max(limits) < on
    # after a normal exit: reset asserted, output off, in the emulator's registers
    assert not rig.emulator.board.reset_released
    assert rig.emulator.board.tps.vout == 0.0


async def test_emulator_refuses_chip_commands_driven_out_of_order(rig: Rig) -> None:
    async with rig.board:
        await rig.board.client.set_line(0, True)  # reset released with the rail still off
        with pytest.raises(DriverError, match="found 0"):
            async with chain_driver(rig.board):
                pass
        refused = [e for e in rig.emulator.board.traffic if e.port == "data" and not e.ok]
        assert refused
        assert rig.emulator.chain.refused_bytes > 0
        await rig.board.power_up()
        async with chain_driver(rig.board) as driver:
            assert driver.frequency_mhz > 400


async def test_safe_state_leaves_vout_off_reset_asserted_fan_full(rig: Rig) -> None:
    async with rig.board:
        await rig.board.power_up()
        await rig.board.set_fan(40.0)
        assert rig.emulator.board.chain_powered
        await rig.board.safe_state()
        emulated = rig.emulator.board
        assert (emulated.tps.vout, emulated.reset_released) == (0.0, False)
        assert emulated.emc.duty_pct == 100.0
        readings = await rig.board.readings()
        assert readings.vout_v.value == 0.0
        assert readings.faults.value == ()


async def test_readings_report_every_sensor(rig: Rig) -> None:
    async with rig.board:
        await rig.board.power_up()
        readings = await rig.board.readings()
    for reading in (readings.asic_temp_c, readings.vr_temp_c, readings.fan_rpm,
                    readings.fan_duty_pct, readings.vin_v, readings.vout_v, readings.iout_a,
                    readings.power_w):  # fmt: skip
        assert reading.ok
    assert readings.vout_v.value == pytest.approx(1.15, abs=0.005)
    assert readings.fan_duty_pct.value == 100.0
    assert readings.vin_v.value == pytest.approx(5.0)
    assert readings.power_w.value == pytest.approx(
        (readings.vout_v.value or 0) * (readings.iout_a.value or 0)
    )


async def test_settings_outside_the_board_limits_are_clear_errors(rig: Rig) -> None:
    async with rig.board:
        await rig.board.power_up()
        with pytest.raises(BoardLimitError, match=r"core_voltage: 1\.5 is outside bitaxe-gamma"):
            await rig.board.set_core_voltage(1.5)
        with pytest.raises(BoardLimitError, match=r"fan_percent: 120 is outside"):
            await rig.board.set_fan(120.0)
        assert rig.emulator.board.tps.vout_command == pytest.approx(1.15, abs=0.005)
        await rig.board.set_core_voltage(1.2)
        assert rig.emulator.board.tps.vout == pytest.approx(1.2, abs=0.005)


def test_frequency_out_of_limits_in_the_spec_is_refused() -> None:
    spec = BoardSpec(board="bitaxe-gamma", ports={"control": "a", "data": "b"},
                     frequency_mhz=700.0)  # fmt: skip
    with pytest.raises(BoardLimitError, match="frequency_mhz: 700"):
        load_board("bitaxe-gamma")(spec)


def test_unknown_board_is_named() -> None:
    with pytest.raises(BoardNotFoundError, match=r"'bitaxe-delta'.*bitaxe-gamma"):
        load_board("bitaxe-delta")


async def test_a_port_that_is_not_bitaxe_raw_is_named(rig: Rig) -> None:
    board = make_board("bitaxe-gamma", rig.emulator.data_path, rig.emulator.data_path)
    board.client.timeout = 0.3
    with pytest.raises(NotBitaxeRawError, match=f"{rig.emulator.data_path} is not a bitaxe-raw"):
        await board.open()


async def test_a_missing_control_port_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyACM9")
    board = make_board("bitaxe-gamma", missing, missing)
    with pytest.raises(ControlLinkError, match="ttyACM9"):
        await board.open()


async def test_a_failed_power_up_is_left_in_the_safe_state(rig: Rig) -> None:
    rig.emulator.board.faults.vr_fault = StatusWord.IOUT_OC  # latches the rail off
    with pytest.raises(PeripheralError, match=r"VOUT reads 0\.000 V"):
        async with BoardRunner(rig.board, clock=rig.clock):
            pass
    emulated = rig.emulator.board
    assert emulated.tps.words[Command.OPERATION] == OPERATION_OFF
    assert emulated.reset_released is False
    assert emulated.emc.duty_pct == 100.0


async def test_runner_powers_up_before_chains_and_off_after(rig: Rig) -> None:
    async with BoardRunner(rig.board, clock=rig.clock) as runner:
        assert rig.emulator.board.chain_powered
        async with chain_driver(rig.board) as driver:
            assert driver.frequency_mhz > 500
        assert runner.chains[0].port == rig.emulator.data_path
    assert rig.emulator.board.tps.vout == 0.0
    assert rig.emulator.board.reset_released is False


async def test_v1_reply_framing_end_to_end(tmp_path: Path) -> None:
    emulator = BoardEmulator("bitaxe-supra", tmp_path / "c", tmp_path / "d", framing=Framing.V1)
    async with emulator:
        board = make_board("bitaxe-supra", emulator.control_path, emulator.data_path,
                           framing="v1")  # fmt: skip
        async with board:
            await board.power_up()
            readings = await board.readings()
        assert readings.vout_v.value == pytest.approx(1.166, abs=0.005)
        assert emulator.board.tps.vout == 0.0


def test_unknown_framing_is_named() -> None:
    with pytest.raises(BoardError, match="framing must be one of v0, v1, got 'v9'"):
        make_board("bitaxe-gamma", "/a", "/b", framing="v9")
