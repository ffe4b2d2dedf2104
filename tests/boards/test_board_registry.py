"""The board registry finds built-ins through installed entry-point metadata."""

from __future__ import annotations

import pytest

from stratum_client.boards.base import Board, BoardSpec
from stratum_client.boards.builtin.serial import SerialBoard
from stratum_client.boards.errors import BoardError, BoardNotFoundError
from stratum_client.boards.registry import (
    available_boards,
    load_board,
    register_board,
    unregister_board,
)


def test_serial_board_is_listed_from_entry_points() -> None:
    assert available_boards()["serial"] == "stratum_client.boards.builtin.serial:SerialBoard"
    assert load_board("SERIAL") is SerialBoard


def test_unknown_board_names_what_is_installed() -> None:
    with pytest.raises(BoardNotFoundError, match=r"no board named 'nope'.*serial"):
        load_board("nope")


def test_register_refuses_a_taken_name_without_replace() -> None:
    class Other(SerialBoard):
        name = "serial"

    with pytest.raises(BoardError, match="taken"):
        register_board(Other)
    register_board(Other, replace=True)
    try:
        assert load_board("serial") is Other
    finally:
        unregister_board("serial")
    assert load_board("serial") is SerialBoard


async def test_serial_board_takes_driver_and_chips_from_config() -> None:
    spec = BoardSpec(board="serial", ports={"port": "/dev/ttyUSB0"}, driver="bm1366", chips=1)
    board: Board = SerialBoard(spec)
    async with board:
        await board.power_up()
        assert (await board.readings()).asic_temp_c.ok is False
    (chain,) = board.chains
    assert (chain.port, chain.driver, chain.chips) == ("/dev/ttyUSB0", "bm1366", 1)


@pytest.mark.parametrize(
    ("name", "driver", "mhz", "volts"),
    [
        ("bitaxe-gamma", "bm1370", 525.0, 1.15),
        ("bitaxe-supra", "bm1368", 490.0, 1.166),
        ("bitaxe-ultra", "bm1366", 485.0, 1.2),
    ],
)
def test_bitaxe_boards_are_built_in_with_their_chip_and_defaults(
    name: str, driver: str, mhz: float, volts: float
) -> None:
    cls = load_board(name)
    assert available_boards()[name].startswith("stratum_client.boards.builtin.bitaxe:")
    spec = BoardSpec(board=name, ports={"control": "/dev/ttyACM0", "data": "/dev/ttyACM1"})
    board = cls(spec)
    (chain,) = board.chains
    assert (chain.port, chain.driver, chain.chips, chain.frequency_mhz) == (
        "/dev/ttyACM1", driver, 1, mhz,
    )  # fmt: skip
    assert board.core_voltage_target == volts


def test_bitaxe_board_needs_both_ports() -> None:
    with pytest.raises(BoardError, match="no data port configured"):
        load_board("bitaxe-gamma")(BoardSpec(board="bitaxe-gamma", ports={"control": "/x"}))


async def test_a_serial_board_runs_without_a_safety_loop() -> None:
    from stratum_client.boards.runner import BoardRunner

    spec = BoardSpec(board="serial", ports={"port": "/dev/ttyUSB0"}, driver="bm1366", chips=1)
    async with BoardRunner(SerialBoard(spec)) as runner:
        assert not runner.safety.polling
        assert runner.chains[0].driver == "bm1366"
