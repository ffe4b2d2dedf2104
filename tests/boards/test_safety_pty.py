"""The safety task against an emulated Gamma on ptys, with the real chip driver mining.

The board, its emulator and the safety task share a :class:`ManualClock` that moves only
when slept on, so the safety policy runs at its real settings (1 s polls, 5 s stall) and
the thermal model at its real time constants, and every time below is exact, whatever the
machine's load. What is checked is read back from the emulator's registers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from board_rig import ChainRunner, Rig, open_rig

from stratum_client.boards.clock import ManualClock
from stratum_client.boards.codecs import emc2101, tps546
from stratum_client.boards.codecs.pmbus import StatusWord
from stratum_client.boards.emulator.faults import SensorFault
from stratum_client.boards.emulator.thermal import ThermalParams
from stratum_client.boards.safety import BoardState, SafetyConfig
from stratum_client.boards.safety_task import SafetyTask

CONFIG = SafetyConfig(dwell_s=10.0)


@dataclass
class Mining:
    rig: Rig
    runner: ChainRunner
    task: SafetyTask
    clock: ManualClock

    async def poll(self, seconds: float = 1.0) -> None:
        await self.clock.sleep(seconds)
        await self.task.poll_once()

    async def poll_until(self, state: BoardState, limit: int = 120) -> float:
        for _ in range(limit):
            await self.poll()
            if self.task.policy.state is state:
                return self.clock.now()
        raise AssertionError(f"never reached {state}; at {self.task.policy.state}")

    @property
    def off_in_registers(self) -> bool:
        board = self.rig.emulator.board
        return board.tps.vout == 0.0 and not board.reset_released


async def _mining(tmp_path: Path, thermal: ThermalParams | None = None) -> Mining:
    clock = ManualClock(1000.0)
    rig = await open_rig(tmp_path, clock=clock, thermal=thermal)
    await rig.board.open()
    await rig.board.power_up()
    runner = ChainRunner(rig.board)
    await runner.start()
    task = SafetyTask(rig.board, CONFIG, runner.hooks(), clock=clock)
    return Mining(rig, runner, task, clock)


@pytest.fixture
async def mining(tmp_path: Path) -> AsyncIterator[Mining]:
    m = await _mining(tmp_path)
    try:
        yield m
    finally:
        await m.runner.close()
        await m.rig.board.close()
        await m.rig.emulator.stop()


async def test_fan_stall_safe_within_5_s_of_tach_zero_then_recovery(mining: Mining) -> None:
    for _ in range(20):
        await mining.poll()
    assert mining.task.policy.state is BoardState.MINING
    assert mining.rig.emulator.board.chain_powered
    mining.rig.emulator.board.faults.fan_stalled = True
    safe_at = await mining.poll_until(BoardState.SAFE)
    first_zero = next(now for now, r in mining.task.history if r.fan_rpm.value == 0)
    assert safe_at - first_zero <= 5.0
    assert "fan stalled" in mining.task.policy.reason
    assert mining.off_in_registers
    assert mining.rig.emulator.board.emc.duty_pct == 100.0
    assert mining.runner.stops  # dispatch stopped before power off
    mining.rig.emulator.board.faults.fan_stalled = False
    await mining.poll_until(BoardState.THROTTLED)
    assert mining.runner.resumes == [500.0]
    assert mining.rig.emulator.board.chain_powered
    assert mining.runner.driver is not None
    assert mining.runner.driver.frequency_mhz == pytest.approx(500.0, abs=7)


async def test_ambient_ramp_steps_frequency_down_before_safe_state(tmp_path: Path) -> None:
    m = await _mining(tmp_path, ThermalParams(ambient_c=35.0, tau_s=20.0))
    try:
        for _ in range(30):
            await m.poll()
        m.rig.emulator.board.thermal.ramp_ambient(0.25, 70.0)
        await m.poll_until(BoardState.SAFE, limit=400)
        assert m.runner.frequencies  # stepped down first
        assert m.runner.frequencies[0] < 525.0
        assert min(m.runner.frequencies) == 400.0
        assert "ASIC at" in m.task.policy.reason
        for _ in range(10):
            await m.poll()
        m.rig.emulator.update()
        assert m.rig.emulator.board.thermal.peak_asic_c <= CONFIG.critical_asic_c + 2.0
        assert m.off_in_registers
    finally:
        await m.runner.close()
        await m.rig.board.close()
        await m.rig.emulator.stop()


@pytest.mark.parametrize("fault", [SensorFault.NACK, SensorFault.GARBAGE])
async def test_three_bad_regulator_readings_in_a_row_engage_safe_state(
    mining: Mining, fault: SensorFault
) -> None:
    await mining.poll()
    mining.rig.emulator.board.faults.sensors[tps546.ADDRESS] = fault
    await mining.poll()
    await mining.poll()
    assert not mining.task.policy.off
    await mining.poll()
    assert mining.task.policy.state is BoardState.SAFE
    assert "3 bad readings" in mining.task.policy.reason
    assert mining.task.status.safe_state_ok is False  # the regulator cannot be told
    assert not mining.rig.emulator.board.reset_released  # but reset is asserted


@pytest.mark.parametrize("fault", [SensorFault.NACK, SensorFault.GARBAGE, SensorFault.IMPLAUSIBLE])
async def test_bad_asic_diode_readings_engage_safe_state_by_the_third(
    mining: Mining, fault: SensorFault
) -> None:
    await mining.poll()
    mining.rig.emulator.board.faults.sensors[emc2101.ADDRESS] = fault
    for _ in range(3):
        await mining.poll()
    assert mining.task.policy.state is BoardState.SAFE
    assert mining.off_in_registers


async def test_regulator_fault_bit_engages_safe_state(mining: Mining) -> None:
    await mining.poll()
    mining.rig.emulator.board.faults.vr_fault = StatusWord.IOUT_OC | StatusWord.IOUT
    await mining.poll()
    assert mining.task.policy.state is BoardState.SAFE
    assert "IOUT_OC" in mining.task.policy.reason
    assert mining.off_in_registers


async def test_an_exception_inside_the_task_block_leaves_vout_off_reset_asserted(
    mining: Mining,
) -> None:
    async def daemon_body() -> None:
        async with mining.task:
            await mining.clock.sleep(0)
            raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        await daemon_body()
    assert mining.off_in_registers
    assert mining.rig.emulator.board.emc.duty_pct == 100.0


async def test_a_normal_exit_powers_down(mining: Mining) -> None:
    async with mining.task:
        await mining.clock.sleep(0)
        assert mining.task.polling
    assert mining.off_in_registers
    assert mining.rig.emulator.board.tps.words[tps546.Command.OPERATION] == tps546.OPERATION_OFF


async def test_a_failing_readings_call_is_a_reason_for_safe_state(mining: Mining) -> None:
    async def broken() -> None:
        raise RuntimeError("sensor code bug")

    mining.rig.board.readings = broken  # type: ignore[assignment, method-assign]
    await mining.poll()
    assert mining.task.policy.state is BoardState.SAFE
    assert mining.off_in_registers
    assert "sensor code bug" in mining.task.policy.reason


async def test_control_port_vanishing_fails_safe_says_so_and_recovers_on_return(
    mining: Mining,
) -> None:
    await mining.poll()
    mining.rig.emulator.vanish_control()
    for _ in range(3):
        await mining.poll()
    assert mining.task.policy.state is BoardState.SAFE
    assert mining.task.status.safe_state_ok is False  # nothing could be switched off
    assert mining.runner.stops
    assert mining.rig.emulator.board.chain_powered  # the bridge kept its state
    mining.rig.emulator.restore_control()
    await mining.poll()
    assert mining.task.status.safe_state_ok is True  # retried once the port was back
    assert mining.off_in_registers
    await mining.poll_until(BoardState.MINING)  # back after the short relink dwell
    assert "control channel back" in mining.task.policy.reason
    assert mining.rig.emulator.board.chain_powered
    assert mining.runner.resumes


async def test_unplug_and_replug_20_times_back_mining_within_5_s_each(mining: Mining) -> None:
    emulator = mining.rig.emulator
    await mining.poll()
    for cycle in range(20):
        emulator.vanish_control()
        emulator.chain_server.unplug()
        await mining.poll_until(BoardState.SAFE)
        await emulator.chain_server.plug()
        emulator.restore_control()
        returned = mining.clock.now()
        seen = len(emulator.board.traffic)
        await mining.poll_until(BoardState.MINING)
        assert mining.clock.now() - returned <= 5.0, cycle
        after = [e.what for e in list(emulator.board.traffic)[seen:] if e.ok]
        on, released = after.index("I2C WRITE 24 01 80"), after.index("GPIO PIN0 01")
        assert after.index("I2C WRITE 24 02 1F") < on < released  # the full power-up
        assert mining.runner.driver is not None
        assert mining.runner.driver.frequency_mhz == pytest.approx(525.0, abs=7)
    assert len(mining.runner.resumes) == 20
    assert mining.task.policy.snapshot.recoveries_last_hour == 0  # unplugs are not faults
