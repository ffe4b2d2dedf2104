"""The DS4432U Bitaxe revisions (Ultra 201/204, Supra 400) on ptys, driven by the real
board classes and chip driver; what is checked is read back from the emulator's DAC,
INA260, POWER_EN and reset registers and its record of the traffic.

Facts copied from the board fact sheet: DS4432U at 0x48, OUT0 register 0xF8; worked trims
1.2 V → 0xC6, 1.166 V → 0xD0, 1.15 V → 0xD4 (ESP-Miner ``DS4432U.c``); INA260 at 0x40;
POWER_EN active low (0 = supply on), absent on the Ultra 204; ASIC temperature = EMC2101
internal + 5 °C; defaults 485 MHz / 1.2 V (Ultra) and 490 MHz / 1.166 V (Supra).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from board_rig import ChainRunner, Rig, chain_driver, make_board, open_rig

from stratum_client.boards.base import BoardSpec
from stratum_client.boards.clock import ManualClock
from stratum_client.boards.emulator.board import PROFILES, EmulatedBitaxe, TrafficEntry
from stratum_client.boards.emulator.faults import SensorFault
from stratum_client.boards.errors import (
    BoardError,
    BoardLimitError,
    BoardNotFoundError,
    SafeStateError,
)
from stratum_client.boards.registry import load_board
from stratum_client.boards.safety import BoardState, SafetyConfig
from stratum_client.boards.safety_task import SafetyTask

DAC_BOARDS = ("bitaxe-ultra-201", "bitaxe-ultra-204", "bitaxe-supra-400")
TRIM = {1.2: 0xC6, 1.166: 0xD0, 1.15: 0xD4}
"""The fact sheet's DS4432U worked examples (ESP-Miner DS4432U.c formula)."""
LOWEST_CODE = 0xFF
"""Full-scale sourcing, bit 7 set with 127 steps: the lowest output the DAC reaches."""
DEFAULTS = {"bitaxe-ultra-201": (485.0, 1.2), "bitaxe-ultra-204": (485.0, 1.2),
            "bitaxe-supra-400": (490.0, 1.166)}  # fmt: skip


def first(traffic: list[TrafficEntry], prefix: str, *, port: str = "control") -> int:
    return next(e.seq for e in traffic if e.port == port and e.what.startswith(prefix) and e.ok)


async def _rig(tmp_path: Path, name: str, clock: ManualClock | None = None) -> AsyncIterator[Rig]:
    rig = await open_rig(tmp_path, name, clock=clock)
    try:
        yield rig
    finally:
        await rig.board.close()
        await rig.emulator.stop()


@pytest.fixture(params=DAC_BOARDS)
async def dac_rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async for rig in _rig(tmp_path, request.param):
        yield rig


@pytest.fixture
async def ultra201(tmp_path: Path) -> AsyncIterator[Rig]:
    async for rig in _rig(tmp_path, "bitaxe-ultra-201"):
        yield rig


# -- the voltage path -------------------------------------------------------------------


@pytest.mark.parametrize(("volts", "code"), sorted(TRIM.items()))
async def test_worked_trims_reach_the_dac_through_the_board(
    tmp_path: Path, volts: float, code: int
) -> None:
    async for rig in _rig(tmp_path, "bitaxe-supra-400"):
        rig.board.vout_target = rig.board.check_core_voltage(volts)
        async with rig.board:
            await rig.board.power_up()
            assert rig.emulator.board.dac.out0 == code
            traffic = list(rig.emulator.board.traffic)
            assert first(traffic, f"I2C WRITE 48 F8 {code:02X}")


async def test_a_voltage_change_while_up_is_trimmed_at_once(ultra201: Rig) -> None:
    async with ultra201.board:
        await ultra201.board.power_up()
        assert ultra201.emulator.board.dac.out0 == TRIM[1.2]
        await ultra201.board.set_core_voltage(1.15)
        assert ultra201.emulator.board.dac.out0 == TRIM[1.15]
        assert ultra201.emulator.board.chain_powered


# -- power-up order ---------------------------------------------------------------------


async def test_power_up_traffic_follows_the_documented_order(dac_rig: Rig) -> None:
    name = dac_rig.board.name
    mhz, volts = DEFAULTS[name]
    async with dac_rig.board:
        await dac_rig.board.power_up()
        async with chain_driver(dac_rig.board) as driver:
            assert driver.frequency_mhz == pytest.approx(mhz, abs=7)
    traffic = list(dac_rig.emulator.board.traffic)
    trim = f"I2C WRITE 48 F8 {TRIM[volts]:02X}"
    if PROFILES[name].power_en_line is None:  # the 204: no enable line at all
        off_at_open = first(traffic, f"I2C WRITE 48 F8 {LOWEST_CODE:02X}")
        supply_on: list[int] = []
        assert not any(e.what.startswith("GPIO PIN1") for e in traffic)
    else:
        off_at_open = first(traffic, "GPIO PIN1 01")  # POWER_EN high: supply off
        supply_on = [first(traffic, "GPIO PIN1 00")]  # POWER_EN low: supply on
    order = [
        first(traffic, "GPIO PIN0 00"),  # reset held
        off_at_open,
        first(traffic, trim),  # core voltage trimmed
        *supply_on,
        first(traffic, "GPIO PIN0 01"),  # reset released
        first(traffic, "chip bytes", port="data"),  # chip init
    ]
    assert order == sorted(order)
    assert not any(e.what.startswith("I2C") and " 24 " in e.what for e in traffic if e.ok)


async def test_open_takes_a_board_left_running_down(dac_rig: Rig) -> None:
    emulated = dac_rig.emulator.board
    assert emulated.supply_enabled  # the emulated board starts with its supply on
    async with dac_rig.board:
        if dac_rig.board.name == "bitaxe-ultra-204":
            assert emulated.supply_enabled
            assert emulated.dac.out0 == LOWEST_CODE
        else:
            assert not emulated.supply_enabled
        assert not emulated.reset_released
        assert not emulated.chain_powered


# -- safe state and power-down ----------------------------------------------------------


async def test_safe_state_leaves_the_supply_off_and_reset_asserted(dac_rig: Rig) -> None:
    async with dac_rig.board:
        await dac_rig.board.power_up()
        await dac_rig.board.set_fan(40.0)
        emulated = dac_rig.emulator.board
        assert emulated.chain_powered
        await dac_rig.board.safe_state()
        assert not emulated.reset_released
        assert emulated.emc.duty_pct == 100.0
        assert not emulated.chain_powered
        if dac_rig.board.name == "bitaxe-ultra-204":
            # no enable line: the rail stays live at the DAC's lowest trim
            assert emulated.supply_enabled
            assert emulated.dac.out0 == LOWEST_CODE
            assert emulated.vout == pytest.approx(0.989, abs=0.002)
            assert "live" in dac_rig.board.core_off
            readings = await dac_rig.board.readings()
            assert (readings.power_w.value or 0.0) > 0.1  # the idle draw of a live rail
        else:
            assert not emulated.supply_enabled
            assert emulated.vout == 0.0
            assert emulated.dac.out0 == LOWEST_CODE  # also low should POWER_EN drive nothing
            assert dac_rig.board.core_off == "off"
            readings = await dac_rig.board.readings()
            assert readings.power_w.value == 0.0


async def test_the_204s_failed_rail_step_is_named_for_what_it_is(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, "bitaxe-ultra-204"):
        async with rig.board:
            await rig.board.power_up()
            rig.emulator.faults.sensors[0x48] = SensorFault.NACK
            with pytest.raises(SafeStateError, match=r"lowest trim \(no enable line\)"):
                await rig.board.safe_state()
            rig.emulator.faults.clear()
            assert not rig.emulator.board.reset_released  # the other steps still ran


async def test_power_down_on_exit_switches_the_supply_off(ultra201: Rig) -> None:
    async with ultra201.board:
        await ultra201.board.power_up()
        assert ultra201.emulator.board.chain_powered
    emulated = ultra201.emulator.board
    assert (emulated.supply_enabled, emulated.reset_released) == (False, False)


# -- readings ---------------------------------------------------------------------------


async def test_ina260_and_internal_temperature_reach_the_readings(dac_rig: Rig) -> None:
    async with dac_rig.board:
        await dac_rig.board.power_up()
        async with chain_driver(dac_rig.board):
            readings = await dac_rig.board.readings()
            emulated = dac_rig.emulator.board
            watts, amps, asic_c = emulated.ina.watts, emulated.ina.amps, emulated.thermal.asic_c
    assert readings.power_w.value == pytest.approx(watts, abs=0.02)
    assert readings.power_w.value > 10.0  # a clocked chip, not the idle draw
    assert readings.vin_v.value == pytest.approx(5.0, abs=0.002)
    assert readings.iin_a.value == pytest.approx(amps, abs=0.002)
    assert readings.asic_temp_c.value == pytest.approx(asic_c, abs=0.6)  # whole degrees
    assert readings.fan_duty_pct.value == 100.0
    assert readings.fan_rpm.ok
    # a TPS40305 reports nothing: absent, not failed
    assert (readings.vr_temp_c.value, readings.vr_temp_c.error) == (None, None)
    assert (readings.faults.value, readings.faults.error) == (None, None)


def test_the_emulated_chain_is_gated_on_trim_supply_and_reset() -> None:
    board = EmulatedBitaxe(PROFILES["bitaxe-ultra-201"], 0.0)
    board.reset_released = True
    assert not board.chain_powered  # DAC code 0: the buck's nominal 1.45 V, out of range
    board.dac.codes[0xF8] = TRIM[1.2]
    assert board.chain_powered
    board.power_en_high = True
    assert not board.chain_powered
    board.power_en_high = False
    board.reset_released = False
    assert not board.chain_powered
    board.reset_released = True
    board.dac.codes[0xF8] = LOWEST_CODE
    assert not board.chain_powered


# -- the safety loop --------------------------------------------------------------------


async def _poll_until(task: SafetyTask, clock: ManualClock, state: BoardState) -> float:
    for _ in range(60):
        await clock.sleep(1.0)
        await task.poll_once()
        if task.policy.state is state:
            return clock.now()
    raise AssertionError(f"never reached {state}; at {task.policy.state}")


FAULT_CASES = [
    ("bitaxe-ultra-201", "fan stall", "fan stalled"),
    ("bitaxe-ultra-204", "fan stall", "fan stalled"),
    ("bitaxe-supra-400", "fan stall", "fan stalled"),
    ("bitaxe-supra-400", "0x40 nack", "power:"),  # the INA260
    ("bitaxe-supra-400", "0x40 garbage", "power:"),
    # the EMC2101: a failed fan write or failed temperature reads, whichever comes first
    ("bitaxe-ultra-201", "0x4C nack", "I2C WriteRead Error"),
    ("bitaxe-ultra-201", "0x4C implausible", "asic_temp: implausible 127"),
]


def _inject(rig: Rig, fault: str) -> None:
    if fault == "fan stall":
        rig.emulator.faults.fan_stalled = True
        return
    address, kind = fault.split()
    rig.emulator.faults.sensors[int(address, 16)] = SensorFault(kind)


@pytest.mark.parametrize(("name", "fault", "reason"), FAULT_CASES, ids=str)
async def test_faults_reach_the_safe_state(
    tmp_path: Path, name: str, fault: str, reason: str
) -> None:
    clock = ManualClock(1000.0)
    async for rig in _rig(tmp_path, name, clock):
        await rig.board.open()
        await rig.board.power_up()
        async with chain_driver(rig.board):
            task = SafetyTask(rig.board, SafetyConfig(), clock=clock)
            for _ in range(10):
                await clock.sleep(1.0)
                await task.poll_once()
            assert task.policy.state is BoardState.MINING
            assert rig.emulator.board.chain_powered
            _inject(rig, fault)
            await _poll_until(task, clock, BoardState.SAFE)
        assert reason in task.policy.reason
        emulated = rig.emulator.board
        assert not emulated.reset_released
        assert not emulated.chain_powered
        if fault == "0x4C nack":  # the fan controller is unreachable: reported, not done
            assert task.status.safe_state_ok is False
        else:
            assert emulated.emc.duty_pct == 100.0
        if name == "bitaxe-ultra-204":
            assert emulated.dac.out0 == LOWEST_CODE  # no enable: the lowest trim instead
        else:
            assert not emulated.supply_enabled
        rig.emulator.faults.clear()
        await rig.board.power_down()


async def test_recovery_after_a_fan_stall_trims_and_enables_again(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    async for rig in _rig(tmp_path, "bitaxe-ultra-201", clock):
        await rig.board.open()
        await rig.board.power_up()
        runner = ChainRunner(rig.board)
        await runner.start()
        try:
            task = SafetyTask(rig.board, SafetyConfig(dwell_s=10.0), runner.hooks(), clock=clock)
            for _ in range(10):
                await clock.sleep(1.0)
                await task.poll_once()
            rig.emulator.faults.fan_stalled = True
            await _poll_until(task, clock, BoardState.SAFE)
            assert not rig.emulator.board.supply_enabled
            rig.emulator.faults.fan_stalled = False
            await _poll_until(task, clock, BoardState.THROTTLED)
            emulated = rig.emulator.board
            assert (emulated.supply_enabled, emulated.reset_released) == (True, True)
            assert emulated.dac.out0 == TRIM[1.2]
            assert runner.resumes == [460.0]  # one 25 MHz step below 485
            assert runner.driver is not None
            assert runner.driver.frequency_mhz == pytest.approx(460.0, abs=7)
        finally:
            await runner.close()
            await rig.board.power_down()


# -- limits and names -------------------------------------------------------------------


async def test_settings_outside_the_limits_are_clear_errors(ultra201: Rig) -> None:
    async with ultra201.board:
        await ultra201.board.power_up()
        with pytest.raises(BoardLimitError, match=r"core_voltage: 1\.35 is outside bitaxe-ultra"):
            await ultra201.board.set_core_voltage(1.35)
        assert ultra201.emulator.board.dac.out0 == TRIM[1.2]


@pytest.mark.parametrize("name", DAC_BOARDS)
def test_the_spec_is_checked_against_the_limits(name: str) -> None:
    ports = {"control": "a", "data": "b"}
    with pytest.raises(BoardLimitError, match=r"core_voltage: 0\.9 is outside"):
        load_board(name)(BoardSpec(board=name, ports=ports, core_voltage_v=0.9))
    with pytest.raises(BoardLimitError, match="frequency_mhz: 600"):
        load_board(name)(BoardSpec(board=name, ports=ports, frequency_mhz=600.0))
    board = load_board(name)(BoardSpec(board=name, ports=ports))
    assert (board.default_frequency_mhz, board.default_core_voltage_v) == DEFAULTS[name]


def test_an_unknown_revision_is_named_with_the_known_ones() -> None:
    with pytest.raises(BoardNotFoundError, match=r"'bitaxe-ultra-209'.*bitaxe-ultra-201"):
        load_board("bitaxe-ultra-209")


def test_a_bad_power_en_line_is_named() -> None:
    with pytest.raises(BoardError, match=r"power_en_line must be 0\.\.255, got 'ten'"):
        make_board("bitaxe-ultra-201", "/a", "/b", power_en_line="ten")
