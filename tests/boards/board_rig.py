"""Shared by the board tests: an emulated board, the board class driving it, its chain."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from stratum_client.asic.base import AsicDriver
from stratum_client.asic.registry import load_driver
from stratum_client.boards.base import BoardSpec
from stratum_client.boards.builtin.bitaxe_bridge import BitaxeRawBoard
from stratum_client.boards.clock import Clock, MonotonicClock
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.boards.emulator.thermal import ThermalParams
from stratum_client.boards.registry import load_board
from stratum_client.boards.safety_task import SafetyHooks

DIFFICULTY_SCALE = 1 / 4096
FAST_DRIVER = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.1}


@dataclass
class Rig:
    """An emulated board and the board object driving it, on one clock."""

    emulator: BoardEmulator
    board: BitaxeRawBoard
    clock: Clock


def make_board(name: str, control: str, data: str, **options: object) -> BitaxeRawBoard:
    spec = BoardSpec(board=name, ports={"control": control, "data": data},
                     board_options={"timing_scale": 0.2, **options})  # fmt: skip
    board = load_board(name)(spec)
    assert isinstance(board, BitaxeRawBoard)
    return board


async def open_rig(
    tmp_path: Path, name: str = "bitaxe-gamma", *, clock: Clock | None = None,
    thermal: ThermalParams | None = None,
) -> Rig:  # fmt: skip
    clock = clock or MonotonicClock()
    emulator = BoardEmulator(name, tmp_path / "control", tmp_path / "data", clock=clock,
                             thermal=thermal, difficulty_scale=DIFFICULTY_SCALE)  # fmt: skip
    await emulator.start()
    board = make_board(name, emulator.control_path, emulator.data_path)
    board.clock = clock
    return Rig(emulator, board, clock)


def chain_driver(board: BitaxeRawBoard, frequency_mhz: float | None = None) -> AsicDriver:
    (chain,) = board.chains
    spec = chain.to_device_spec(difficulty_scale=DIFFICULTY_SCALE, options=FAST_DRIVER)
    if frequency_mhz is not None:
        spec = replace(spec, frequency_mhz=frequency_mhz)
    return load_driver(chain.driver)(spec)


@dataclass
class ChainRunner:
    """Plays the daemon's part: runs the chip driver and answers the safety hooks."""

    board: BitaxeRawBoard
    driver: AsicDriver | None = None
    stops: list[str] = field(default_factory=list)
    resumes: list[float | None] = field(default_factory=list)
    frequencies: list[float] = field(default_factory=list)

    async def start(self, frequency_mhz: float | None = None) -> None:
        self.driver = chain_driver(self.board, frequency_mhz)
        await self.driver.start()

    async def stop_dispatch(self, reason: str) -> None:
        self.stops.append(reason)
        if self.driver is not None:
            await self.driver.stop()
            self.driver = None

    async def resume(self, frequency_mhz: float | None) -> None:
        self.resumes.append(frequency_mhz)
        await self.start(frequency_mhz)

    async def set_frequency(self, mhz: float) -> None:
        self.frequencies.append(mhz)
        if self.driver is not None:
            await self.driver.set_frequency(mhz)

    def hooks(self) -> SafetyHooks:
        return SafetyHooks(self.stop_dispatch, self.resume, self.set_frequency)

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
