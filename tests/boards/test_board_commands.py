"""``stratum-client emulate --board`` and ``demo --board``, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from live_helpers import WAIT

from stratum_client.boards.registry import load_board
from stratum_client.boards.runner import BoardRunner
from stratum_client.config import parse_config

PATIENCE = 120.0
POOL = '[[pools]]\nurl = "stratum+tcp://127.0.0.1:3333"\nuser = "x"\n'


@pytest.mark.parametrize("name", ["bitaxe-gamma", "bitaxe-ultra-201"])
async def test_emulate_board_serves_both_ports_and_prints_a_table_that_powers_up(
    tmp_path: Path, name: str
) -> None:
    link = tmp_path / "board"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratum_client", "emulate", "--board", name,
        "--link", str(link), "--duration", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(WAIT):
            while not lines or lines[-1].strip() != "":
                lines.append((await process.stdout.readline()).decode())
        table = "".join(line for line in lines if not line.startswith(("#", "bitaxe")))
        (device,) = parse_config(POOL + table).devices
        assert device.board is not None
        ports = dict(device.board.spec.ports)
        assert ports == {"control": f"{link}-control", "data": f"{link}-data"}
        board = load_board(name)(device.board.spec)
        async with BoardRunner(board) as runner:  # the control protocol answers: powered
            readings = await runner.board.readings()
            # the TPS546 reads its VOUT back; the DS4432U board's INA260 sees the chip draw
            measured = readings.vout_v if name == "bitaxe-gamma" else readings.power_w
            assert measured.ok
            assert measured.value is not None
            assert measured.value > 0.5
    finally:
        process.terminate()
        await process.wait()


def demo_alone(
    tmp_path: Path, board: str, *, seconds: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``stratum-client demo`` on ``board`` with no raw chains: its output and summary."""
    summary_file = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, "-m", "stratum_client", "demo", "--board", board,
         "--chips-1366", "0", "--chips-1397", "0",
         "--duration", str(seconds), "--summary-json", str(summary_file),
         "--cgminer-port", "0", "--rest-port", "0", "--log-level", "info"],
        capture_output=True, text=True, timeout=PATIENCE, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(summary_file.read_text())


def test_demo_on_another_board_alone_mines_shares_through_the_board(tmp_path: Path) -> None:
    result, summary = demo_alone(tmp_path, "bitaxe-supra", seconds=10)
    assert summary["ok"]
    assert summary["chains"] == 1
    assert summary["pool_accepted"] > 0
    assert summary["lost"] == 0
    board = summary["board"]
    assert (board["name"], board["device"]) == ("bitaxe-supra", "demo-bitaxe-supra")
    assert board["accepted"] == summary["accepted"]  # the board's chain is the only one
    assert abs(board["core_voltage_v"] - 1.166) < 0.01  # the Supra's default, not the Gamma's
    assert board["powered_down"] is True
    # The chips answer only once the board has powered them, and it is off afterwards.
    assert "board powered up" in result.stderr + result.stdout
    assert "board off" in result.stderr + result.stdout


def test_demo_on_the_ultra_204_says_its_rail_stays_live(tmp_path: Path) -> None:
    result, summary = demo_alone(tmp_path, "bitaxe-ultra-204", seconds=6)
    assert summary["pool_accepted"] > 0
    board = summary["board"]
    assert board["power_w"] > 0  # the INA260's reading
    # no enable line: reset held, the rail left at the DAC's lowest trim (code 0xFF)
    assert board["powered_down"] is False
    assert abs(board["rail_left_v"] - 0.989) < 0.002
    assert "rail left at 0.99 V" in result.stdout
    assert "live at the lowest trim" in result.stderr + result.stdout
