"""The piaxe board's sequencing on an emulated HAT (line levels and an LM75 model).

The real buses are ``/dev/i2c-1`` and a gpiochip; here the same board code drives model
buses, with PGOOD wired to follow the buck's enable as on the HAT.
"""

from __future__ import annotations

import pytest

from stratum_client.boards.base import BoardSpec
from stratum_client.boards.builtin.piaxe import PiAxeBoard
from stratum_client.boards.clock import ManualClock
from stratum_client.boards.codecs import lm75
from stratum_client.boards.emulator.buses import Lm75Model, ModelGpio, ModelI2c
from stratum_client.boards.errors import BoardError, BoardLimitError, PeripheralError
from stratum_client.boards.registry import load_board
from stratum_client.boards.safety import BoardState
from stratum_client.boards.safety_task import SafetyTask

SDN, PGOOD, RESET = 17, 27, 22


def hat(*, pgood_follows: bool = True) -> tuple[PiAxeBoard, ModelGpio, Lm75Model]:
    board = load_board("piaxe")(BoardSpec(board="piaxe", ports={"port": "/dev/ttyS0"}))
    assert isinstance(board, PiAxeBoard)
    sensor = Lm75Model(40.0)
    gpio = ModelGpio(follow={PGOOD: SDN} if pgood_follows else {PGOOD: 99})
    board.i2c, board.gpio, board.clock = ModelI2c({lm75.ADDRESS: sensor}), gpio, ManualClock()
    return board, gpio, sensor


async def test_power_up_holds_reset_until_pgood_then_releases_it() -> None:
    board, gpio, _ = hat()
    async with board:
        await board.power_up()
        assert gpio.levels == {SDN: True, RESET: False}
    order = gpio.history
    assert order.index((SDN, True)) < order.index((RESET, False))
    assert order[:2] == [(RESET, True), (SDN, False)]  # at open: reset held, buck off
    assert gpio.levels == {SDN: False, RESET: True}  # after exit


async def test_no_pgood_switches_the_supply_off_and_says_so() -> None:
    board, gpio, _ = hat(pgood_follows=False)
    async with board:
        with pytest.raises(PeripheralError, match="PGOOD stayed low"):
            await board.power_up()
        assert gpio.levels[SDN] is False
        assert gpio.levels[RESET] is True


async def test_overheat_on_the_hat_sensor_switches_the_buck_off() -> None:
    board, gpio, sensor = hat()
    clock = ManualClock()
    async with board:
        await board.power_up()
        task = SafetyTask(board, clock=clock)
        await task.poll_once()
        assert task.policy.state is BoardState.MINING
        sensor.temperature_c = 76.0
        await clock.sleep(1.0)
        await task.poll_once()
        assert task.policy.state is BoardState.SAFE
        assert gpio.levels == {SDN: False, RESET: True}


def test_voltage_and_fan_are_not_settable_and_options_are_checked() -> None:
    board, _, _ = hat()
    with pytest.raises(BoardError, match="cannot set core_voltage"):
        board.check_core_voltage(1.2)
    with pytest.raises(BoardLimitError, match="frequency_mhz"):
        board.request_frequency(700.0)
    spec = BoardSpec(board="piaxe", ports={"port": "/dev/ttyS0"},
                     board_options={"reset_line": "22"})  # fmt: skip
    with pytest.raises(BoardError, match="reset_line must be int"):
        PiAxeBoard(spec)
