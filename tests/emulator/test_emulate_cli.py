"""``stratum-client emulate`` as a user runs it: a separate process serving a pty that
``stratum-client devices --probe`` (another process) identifies as the chain it claims."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PATIENCE = 60.0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stratum_client", *args]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    link = tmp_path / "asic0"
    with subprocess.Popen(
        _cli("emulate", "--chip", "bm1368", "--chips", "4", "--link", str(link)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert f"on {link} -> /dev/pts/" in first, first
            yield proc, link
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=PATIENCE)


def test_probe_of_an_emulated_chain_reports_its_model_and_count(
    emulator: tuple[subprocess.Popen[str], Path],
) -> None:
    _, link = emulator
    probe = subprocess.run(
        _cli("devices", "--probe", str(link), "--json", "--timeout", "10"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["chip_count"] == 4
    assert found["models"] == {"BM1368": 4}
    assert {chip["chip_id"] for chip in found["chips"]} == {"0x1368"}


def test_sigterm_stops_it_with_a_summary_and_removes_the_link(
    emulator: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, link = emulator
    assert link.is_symlink()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0, err
    assert f"summary {link}:" in out
    assert not os.path.lexists(link)


def test_bad_options_exit_2_naming_the_option(tmp_path: Path) -> None:
    result = subprocess.run(
        _cli("emulate", "--corrupt-rate", "1.5", "--link", str(tmp_path / "x"), "--duration", "1"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 2
    assert "corrupt_rate" in result.stderr
    assert "Traceback" not in result.stderr


def test_bridge_and_silicon_time_flags_show_in_the_summary(tmp_path: Path) -> None:
    link = tmp_path / "asic0"
    args = ("--chip", "bm1397", "--bridge", "ft230x", "--silicon-time", "--step-hashes", "64")
    result = subprocess.run(
        _cli("emulate", *args, "--duration", "1", "--link", str(link)),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout.splitlines()[-1]
    assert "0 reply bytes the bridge could not carry" in summary
    assert "0 of 0 jobs ran out" in summary
    rejected = subprocess.run(
        _cli("emulate", "--bridge", "ch340", "--link", str(link), "--duration", "1"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert rejected.returncode == 2
    assert "--bridge" in rejected.stderr
