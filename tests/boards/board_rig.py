"""Shared by the board tests: an emulated board and the board class driving it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stratum_client.boards.base import BoardSpec
from stratum_client.boards.builtin.bitaxe import BitaxeBoard
from stratum_client.boards.clock import ScaledClock
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.boards.emulator.thermal import ThermalParams
from stratum_client.boards.registry import load_board

DIFFICULTY_SCALE = 1 / 4096
FAST_DRIVER = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.1}


@dataclass
class Rig:
    """An emulated board and the board object driving it, on one clock."""

    emulator: BoardEmulator
    board: BitaxeBoard
    clock: ScaledClock


def make_board(name: str, control: str, data: str, **options: object) -> BitaxeBoard:
    spec = BoardSpec(board=name, ports={"control": control, "data": data},
                     board_options={"timing_scale": 0.2, **options})  # fmt: skip
    board = load_board(name)(spec)
    assert isinstance(board, BitaxeBoard)
    return board


async def open_rig(
    tmp_path: Path, name: str = "bitaxe-gamma", *, factor: float = 1.0,
    thermal: ThermalParams | None = None,
) -> tuple[BoardEmulator, BitaxeBoard, ScaledClock]:  # fmt: skip
    clock = ScaledClock(factor)
    emulator = BoardEmulator(name, tmp_path / "control", tmp_path / "data", clock=clock,
                             thermal=thermal, difficulty_scale=DIFFICULTY_SCALE)  # fmt: skip
    await emulator.start()
    board = make_board(name, emulator.control_path, emulator.data_path)
    board.clock = clock
    return emulator, board, clock
