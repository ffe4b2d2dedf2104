"""``stratum-client demo``, run the way the README tells a newcomer to run it."""

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
    assert summary["chains"] == 2
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"summary: {summary['accepted']} accepted, 0 rejected")
    assert "Traceback" not in result.stderr


def test_one_chain_can_be_left_out(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = _demo(
        "--duration",
        "6",
        "--chips-1366",
        "0",
        "--cgminer-port",
        "0",
        "--rest-port",
        "0",
        "--summary-json",
        str(summary_file),
    )
    summary = json.loads(summary_file.read_text())
    assert summary["chains"] == 1, result.stdout + result.stderr
    assert summary["rejected"] == 0


def test_bad_options_exit_2_naming_the_option() -> None:
    result = _demo("--chips-1366", "0", "--chips-1397", "0")
    assert result.returncode == 2
    assert "--chips-1366" in result.stderr
    assert "Traceback" not in result.stderr
