"""Opt-in: the same bring-up and safety checks against a real board.

Collected only with ``--board-port control=/dev/ttyACM0,data=/dev/ttyACM1`` (and
``--board bitaxe-gamma`` or another kind); see ``tests/boards/conftest.py``. The board is
powered for a few seconds at its default voltage and frequency and left off afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from board_rig import FAST_DRIVER

from stratum_client.asic.registry import load_driver
from stratum_client.boards.base import BoardSpec
from stratum_client.boards.builtin.bitaxe import RESET_LINE, BitaxeBoard
from stratum_client.boards.registry import load_board
from stratum_client.boards.safety import BoardState, SafetyConfig
from stratum_client.boards.safety_task import SafetyTask


def _ports(option: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in option.split(",") if part)
    return {role.strip(): path.strip() for role, path in pairs}


@pytest.fixture
async def board(request: pytest.FixtureRequest) -> AsyncIterator[BitaxeBoard]:
    name = request.config.getoption("--board")
    ports = _ports(request.config.getoption("--board-port"))
    real = load_board(name)(BoardSpec(board=name, ports=ports))
    assert isinstance(real, BitaxeBoard)
    async with real:
        yield real


async def test_bring_up_reads_plausible_values_and_finds_the_chip(board: BitaxeBoard) -> None:
    await board.power_up()
    readings = await board.readings()
    assert readings.vout_v.ok
    assert readings.vout_v.value == pytest.approx(board.vout_target, rel=0.05)
    assert readings.vr_temp_c.ok
    assert 0 < (readings.vr_temp_c.value or 0) < 90
    assert readings.faults.value == ()
    (chain,) = board.chains
    driver = load_driver(chain.driver)(chain.to_device_spec(options=FAST_DRIVER))
    async with driver:
        assert driver.frequency_mhz > 0


async def test_safe_state_switches_the_rail_off_and_holds_reset(board: BitaxeBoard) -> None:
    await board.power_up()
    task = SafetyTask(board, SafetyConfig())
    await task.poll_once()
    assert task.policy.state is not BoardState.SAFE
    await board.safe_state()
    readings = await board.readings()
    assert (readings.vout_v.value or 0) < 0.1
    assert await board.client.get_line(RESET_LINE) is False
    assert readings.fan_duty_pct.value == pytest.approx(100.0)
