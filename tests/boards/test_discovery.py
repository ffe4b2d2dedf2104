"""USB discovery: recorded udev properties of tty devices → board and port role.

The property sets are what udev reports for a bitaxe-raw bridge (VID:PID c0de:cafe,
manufacturer ``OSMU``, product ``Bitaxe``, two CDC-ACM functions on interfaces 0 and 2),
for an FTDI-based stick and for a board whose kernel numbered the ports the other way
round; newer udev spells the USB keys ``ID_USB_*``.
"""

from __future__ import annotations

import pytest

from stratum_client.boards.base import UsbMatch
from stratum_client.boards.discovery import (
    devices_snippet,
    group_ports,
    match_port,
    usb_matches,
)


def bitaxe_port(
    device: str, interface: str, serial: str = "1A2B3C4D", bus: str = "2"
) -> dict[str, str]:
    return {
        "DEVNAME": device,
        "SUBSYSTEM": "tty",
        "ID_BUS": "usb",
        "ID_VENDOR": "OSMU",
        "ID_VENDOR_ENC": "OSMU",
        "ID_VENDOR_ID": "c0de",
        "ID_MODEL": "Bitaxe",
        "ID_MODEL_ENC": "Bitaxe",
        "ID_MODEL_ID": "cafe",
        "ID_REVISION": "0001",
        "ID_SERIAL": f"OSMU_Bitaxe_{serial}",
        "ID_SERIAL_SHORT": serial,
        "ID_USB_INTERFACES": ":020200:0a0000:",
        "ID_USB_INTERFACE_NUM": interface,
        "ID_USB_DRIVER": "cdc_acm",
        "ID_PATH": f"pci-0000:00:14.0-usb-0:{bus}:1.{int(interface)}",
    }


FTDI_STICK = {
    "DEVNAME": "/dev/ttyUSB0",
    "ID_VENDOR": "GekkoScience",
    "ID_VENDOR_ID": "0403",
    "ID_MODEL": "CompacF_Bitcoin_Miner",
    "ID_MODEL_ID": "6015",
    "ID_SERIAL_SHORT": "GS123",
    "ID_USB_INTERFACE_NUM": "00",
    "ID_USB_DRIVER": "ftdi_sio",
}


Rules = tuple[dict[str, tuple[UsbMatch, ...]], dict[str, tuple[str, ...]]]


@pytest.fixture(scope="module")
def rules() -> Rules:
    return usb_matches()


def test_a_bitaxe_raw_bridge_matches_every_bitaxe_board(rules: Rules) -> None:
    match = match_port(bitaxe_port("/dev/ttyACM0", "00"), rules[0])
    assert match is not None
    # one bridge firmware on every revision: the USB identity cannot tell them apart
    assert match.boards == ("bitaxe-gamma", "bitaxe-supra", "bitaxe-supra-400", "bitaxe-ultra",
                            "bitaxe-ultra-201", "bitaxe-ultra-204")  # fmt: skip
    assert (match.interface, match.serial) == (0, "1A2B3C4D")


def test_other_usb_serial_devices_do_not_match(rules: Rules) -> None:
    assert match_port(FTDI_STICK, rules[0]) is None
    wrong_product = {**bitaxe_port("/dev/ttyACM0", "00"), "ID_MODEL": "BitaxeBonanza"}
    assert match_port(wrong_product, rules[0]) is None


def test_roles_follow_interface_order_not_tty_numbers(rules: Rules) -> None:
    ports = [bitaxe_port("/dev/ttyACM2", "02"), bitaxe_port("/dev/ttyACM3", "00")]
    matches = [m for p in ports if (m := match_port(p, rules[0])) is not None]
    (found,) = group_ports(matches, rules[1])
    assert dict(found.ports) == {"control": "/dev/ttyACM3", "data": "/dev/ttyACM2"}
    assert found.problem is None


def test_two_boards_are_kept_apart_and_a_lone_port_is_reported(rules: Rules) -> None:
    ports = [
        bitaxe_port("/dev/ttyACM0", "00", "AAAA0001"),
        bitaxe_port("/dev/ttyACM1", "02", "AAAA0001"),
        bitaxe_port("/dev/ttyACM2", "00", "BBBB0002", bus="3"),
    ]
    matches = [m for p in ports if (m := match_port(p, rules[0])) is not None]
    first, second = group_ports(matches, rules[1])
    assert first.serial == "AAAA0001"
    assert first.problem is None
    assert second.problem == "expected 2 ports (control, data), found 1"


def test_newer_udev_key_spelling_and_no_serial_group_by_path(rules: Rules) -> None:
    def renamed(device: str, interface: str) -> dict[str, str]:
        props = bitaxe_port(device, interface)
        del props["ID_SERIAL_SHORT"]
        for key in ("ID_VENDOR", "ID_MODEL", "ID_VENDOR_ID", "ID_MODEL_ID"):
            props[key.replace("ID_", "ID_USB_", 1)] = props.pop(key)
        return props

    ports = [renamed("/dev/ttyACM0", "00"), renamed("/dev/ttyACM1", "02")]
    matches = [m for p in ports if (m := match_port(p, rules[0])) is not None]
    (found,) = group_ports(matches, rules[1])
    assert dict(found.ports) == {"control": "/dev/ttyACM0", "data": "/dev/ttyACM1"}


def test_snippet_names_the_board_and_both_ports(rules: Rules) -> None:
    ports = [bitaxe_port("/dev/ttyACM0", "00"), bitaxe_port("/dev/ttyACM1", "02")]
    matches = [m for p in ports if (m := match_port(p, rules[0])) is not None]
    (found,) = group_ports(matches, rules[1])
    assert devices_snippet(found) == (
        "[[devices]]\n"
        'board = "bitaxe-gamma"  # or: bitaxe-supra, bitaxe-supra-400, bitaxe-ultra, '
        "bitaxe-ultra-201, bitaxe-ultra-204\n"
        'ports = { control = "/dev/ttyACM0", data = "/dev/ttyACM1" }\n'
    )
