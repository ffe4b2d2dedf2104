"""``stratum-client devices`` on USB boards, from recorded udev property dicts."""

from __future__ import annotations

import subprocess
import sys

from stratum_client.commands.devices_boards import boards_text
from stratum_client.config import parse_config
from tests.boards.test_discovery import FTDI_STICK, bitaxe_port

POOL = '[[pools]]\nurl = "stratum+tcp://127.0.0.1:3333"\nuser = "x"\n'


def test_a_bitaxe_is_listed_with_a_table_that_is_a_valid_config() -> None:
    ttys = [bitaxe_port("/dev/ttyACM1", "02"), FTDI_STICK, bitaxe_port("/dev/ttyACM0", "00")]
    text = boards_text(ttys)
    assert (
        "bitaxe-gamma or bitaxe-supra or bitaxe-supra-400 or bitaxe-ultra or bitaxe-ultra-201"
        " or bitaxe-ultra-204, serial 1A2B3C4D"
    ) in text
    assert "control /dev/ttyACM0, data /dev/ttyACM1" in text
    assert "GekkoScience" not in text
    table = text[text.index("[[devices]]") :]
    (device,) = parse_config(POOL + table).devices
    assert device.board is not None
    assert device.board.spec.board == "bitaxe-gamma"
    assert dict(device.board.spec.ports) == {"control": "/dev/ttyACM0", "data": "/dev/ttyACM1"}


def test_two_boards_each_get_a_table_and_a_lone_port_says_what_is_missing() -> None:
    ttys = [
        bitaxe_port("/dev/ttyACM0", "00", serial="AAAA", bus="1"),
        bitaxe_port("/dev/ttyACM1", "02", serial="AAAA", bus="1"),
        bitaxe_port("/dev/ttyACM2", "00", serial="BBBB", bus="2"),
    ]
    text = boards_text(ttys)
    assert text.count("[[devices]]") == 2
    assert "serial AAAA" in text
    assert "serial BBBB" in text
    assert "not usable as found: expected 2 ports (control, data), found 1" in text


def test_no_boards_says_so() -> None:
    assert boards_text([FTDI_STICK]) == "no USB mining boards found"


def test_the_command_runs_on_this_machine() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stratum_client", "devices", "--boards"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "USB" in result.stdout
