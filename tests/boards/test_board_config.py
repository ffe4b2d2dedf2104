"""The board keys of a [[devices]] table: what a board implies and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum_client.api.board_fields import BOARD_STATES
from stratum_client.boards.safety import BoardState
from stratum_client.config import load_config, parse_config
from stratum_client.errors import ConfigError

POOL = """
[[pools]]
url = "stratum+tcp://127.0.0.1:3333"
user = "bc1qtest"
"""


def _config(device: str) -> str:
    return f"{POOL}\n[[devices]]\n{device}"


def _errors(device: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(device))
    return {e.field: str(e) for e in info.value.errors}


def test_gamma_implies_its_chip_driver_chain_port_and_chip_count() -> None:
    config = parse_config(
        _config("""
name = "gamma"
board = "bitaxe-gamma"
ports = { control = "/dev/ttyACM0", data = "/dev/ttyACM1" }
frequency_mhz = 500
core_voltage_v = 1.2
[devices.safety]
critical_asic_c = 72
poll_interval_s = 0.5
""")
    )
    (device,) = config.devices
    assert (device.driver, device.port, device.chips) == ("bm1370", "/dev/ttyACM1", 1)
    assert device.frequency_mhz == 500
    assert device.board is not None
    assert device.board.spec.board == "bitaxe-gamma"
    assert device.board.spec.ports == {"control": "/dev/ttyACM0", "data": "/dev/ttyACM1"}
    assert device.board.spec.core_voltage_v == 1.2
    assert device.board.safety.critical_asic_c == 72
    assert device.board.safety.poll_interval_s == 0.5
    assert device.board.safety.warn_asic_c == 70  # the rest keep their defaults


def test_plain_chain_tables_have_no_board() -> None:
    config = parse_config(_config('driver = "bm1366"\nport = "/tmp/asic0"\nchips = 1'))
    assert config.devices[0].board is None


def test_unknown_board_is_an_error_naming_it_and_the_installed_ones() -> None:
    errors = _errors('board = "bitaxe-hex"\nports = { control = "/a", data = "/b" }')
    message = errors["devices[0].board"]
    assert "bitaxe-hex" in message
    assert "bitaxe-gamma" in message


def test_missing_port_role_is_named() -> None:
    errors = _errors('board = "bitaxe-gamma"\nports = { control = "/dev/ttyACM0" }')
    assert "data" in errors["devices[0].ports"]


def test_missing_ports_table_is_named() -> None:
    errors = _errors('board = "bitaxe-gamma"')
    assert "control" in errors["devices[0].ports"]


def test_unknown_port_role_is_named() -> None:
    errors = _errors('board = "bitaxe-gamma"\nports = { control = "/a", data = "/b", aux = "/c" }')
    assert "aux" in next(iter(errors))


def test_driver_and_port_are_implied_by_a_bitaxe() -> None:
    errors = _errors(
        'board = "bitaxe-gamma"\nports = { control = "/a", data = "/b" }\n'
        'driver = "bm1366"\nport = "/b"'
    )
    assert set(errors) == {"devices[0].driver", "devices[0].port"}


def test_voltage_outside_the_boards_limits_names_the_key() -> None:
    errors = _errors('board = "bitaxe-gamma"\nports = { control = "/a", data = "/b" }\n'
                     "core_voltage_v = 1.9")  # fmt: skip
    assert "1.9" in errors["devices[0].core_voltage_v"]


def test_bad_safety_thresholds_are_refused() -> None:
    errors = _errors('board = "bitaxe-gamma"\nports = { control = "/a", data = "/b" }\n'
                     "[devices.safety]\nwarn_asic_c = 90\nfan_wobble = 1")  # fmt: skip
    assert "devices[0].safety" in errors
    assert "devices[0].safety.fan_wobble" in errors


def test_serial_board_takes_driver_and_chips_from_the_table() -> None:
    config = parse_config(_config(
        'board = "serial"\nports = { port = "/tmp/asic0" }\ndriver = "bm1366"\nchips = 2'
    ))  # fmt: skip
    (device,) = config.devices
    assert (device.driver, device.port, device.chips) == ("bm1366", "/tmp/asic0", 2)


@pytest.mark.parametrize("name", ["gamma", "supra", "ultra"])
def test_the_shipped_bitaxe_configs_name_their_board_and_both_ports(name: str) -> None:
    root = Path(__file__).resolve().parents[2]
    (device,) = load_config(root / "configs" / f"bitaxe-{name}.toml", env={}).devices
    assert device.board is not None
    assert device.board.spec.board == f"bitaxe-{name}"
    assert dict(device.board.spec.ports) == {"control": "/dev/ttyACM0", "data": "/dev/ttyACM1"}
    assert device.port == "/dev/ttyACM1"  # the chip driver opens the ASIC UART


def test_the_api_knows_every_board_state() -> None:
    assert tuple(BoardState) == BOARD_STATES
