"""``stratum-client demo``, run the way the README tells a newcomer to run it: the raw
BM1366 and BM1397 chains and, beside them, an emulated Bitaxe Gamma that the daemon
powers up, watches and powers down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

PATIENCE = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratum_client", "demo", *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def test_a_short_demo_gets_shares_accepted_by_the_validating_pool(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = _demo(
        "--duration",
        "10",
        "--summary-json",
        str(summary_file),
        "--cgminer-port",
        str(_free_port()),
        "--rest-port",
        str(_free_port()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(summary_file.read_text())
    assert summary["ok"] is True
    assert summary["accepted"] >= 1
    assert summary["rejected"] == summary["pool_rejected"] == 0
    # the pool's own count: every share the daemon counts as accepted, the pool accepted
    assert summary["pool_accepted"] == summary["accepted"]
    assert summary["lost"] == 0
    assert summary["hashrate"] > 0
    assert summary["chains"] == 3
    board = summary["board"]
    assert (board["name"], board["device"]) == ("bitaxe-gamma", "demo-bitaxe-gamma")
    assert board["state"] == "mining"
    assert board["failures"] == 0
    # measured at the board's last poll: the emulated ASIC runs above a 25 °C room, the
    # regulator reports its output power at the Gamma's 1.15 V
    assert board["asic_temp_c"] > 25
    assert board["power_w"] > 0
    assert abs(board["core_voltage_v"] - 1.15) < 0.01
    assert board["powered_down"] is True  # the emulator's regulator is off, reset held
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"summary: {summary['accepted']} accepted, 0 rejected")
    assert f"board bitaxe-gamma: {board['accepted']} accepted, mining at last poll" in last
    assert last.endswith(" W, powered down")
    assert "Traceback" not in result.stderr


def test_one_chain_and_the_board_can_be_left_out(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = _demo(
        "--duration",
        "6",
        "--chips-1366",
        "0",
        "--board",
        "none",
        "--cgminer-port",
        "0",
        "--rest-port",
        "0",
        "--summary-json",
        str(summary_file),
    )
    summary = json.loads(summary_file.read_text())
    assert summary["chains"] == 1, result.stdout + result.stderr
    assert summary["board"] is None
    assert summary["rejected"] == 0
    assert "board" not in result.stdout.strip().splitlines()[-1]


def test_nothing_to_mine_on_exits_2_naming_the_option() -> None:
    result = _demo("--chips-1366", "0", "--chips-1397", "0", "--board", "none")
    assert result.returncode == 2
    assert "--chips-1366" in result.stderr
    assert "nothing to mine on" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_board_exits_2_listing_the_boards() -> None:
    result = _demo("--board", "antminer-s9")
    assert result.returncode == 2
    assert "bitaxe-gamma" in result.stderr
    assert "none" in result.stderr
