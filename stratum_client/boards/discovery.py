"""Which board is on which USB serial port: a pure matcher over udev properties.

A tty's udev properties (``ID_VENDOR_ID``, ``ID_MODEL_ID``, ``ID_VENDOR``, ``ID_MODEL``,
``ID_USB_INTERFACE_NUM``, ``ID_SERIAL_SHORT``, ``DEVNAME``; newer udev spells some of them
``ID_USB_*``) are matched against every board's :class:`~stratum_client.boards.base.UsbMatch`
by :func:`match_port`. :func:`group_ports` then gathers the ports of one USB device
(same serial, or same parent path) and gives them the board's port roles in interface
order: on a bitaxe-raw bridge the first CDC-ACM function is the control port and the
second the ASIC UART, whatever ``ttyACM`` numbers the kernel handed out. The Bitaxe
Gamma, Supra and Ultra share one USB identity, so a match names every candidate; the
chip on the data port tells them apart. :func:`list_usb_ttys` reads the live properties
with ``pyudev`` (imported only when called) and falls back to the USB device's sysfs
attributes where no udev database is present.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import UsbMatch
from .errors import BoardError
from .registry import available_boards, load_board

__all__ = [
    "FoundBoard",
    "PortMatch",
    "devices_snippet",
    "group_ports",
    "list_usb_ttys",
    "match_port",
    "usb_matches",
]

Properties = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PortMatch:
    """One tty that belongs to a known board."""

    device: str
    boards: tuple[str, ...]
    """Every board whose USB identity matches (sorted)."""
    interface: int
    serial: str
    group: str
    """What ties the ports of one USB device together (its serial, else its path)."""


@dataclass(frozen=True, slots=True)
class FoundBoard:
    """One USB device and its ports by role, for the ``[[devices]]`` snippet."""

    boards: tuple[str, ...]
    serial: str
    ports: Mapping[str, str]
    problem: str | None = None
    """Why this device cannot be used as found (a port missing), or None."""


def _get(props: Properties, *names: str) -> str:
    for name in names:
        value = props.get(name)
        if value:
            return value
    return ""


def _hex(value: str) -> int | None:
    try:
        return int(value, 16)
    except ValueError:
        return None


def _same(wanted: str | None, found: str) -> bool:
    return wanted is None or wanted.casefold() == found.replace("_", " ").casefold()


def _matches(rule: UsbMatch, props: Properties) -> bool:
    vendor = _hex(_get(props, "ID_VENDOR_ID", "ID_USB_VENDOR_ID"))
    product = _hex(_get(props, "ID_MODEL_ID", "ID_USB_MODEL_ID"))
    if rule.vendor_id is not None and rule.vendor_id != vendor:
        return False
    if rule.product_id is not None and rule.product_id != product:
        return False
    maker = _get(props, "ID_USB_VENDOR", "ID_VENDOR")
    model = _get(props, "ID_USB_MODEL", "ID_MODEL")
    return _same(rule.manufacturer, maker) and _same(rule.product, model)


def match_port(props: Properties, rules: Mapping[str, Iterable[UsbMatch]]) -> PortMatch | None:
    """The boards this tty can be (``rules``: board name → its USB matches), or None."""
    device = _get(props, "DEVNAME")
    if not device:
        return None
    boards = tuple(sorted(name for name, matches in rules.items()
                          if any(_matches(rule, props) for rule in matches)))  # fmt: skip
    if not boards:
        return None
    interface = _get(props, "ID_USB_INTERFACE_NUM")
    serial = _get(props, "ID_SERIAL_SHORT", "ID_USB_SERIAL_SHORT")
    group = serial or _get(props, "ID_PATH").rsplit(":", 1)[0] or device
    return PortMatch(device, boards, int(interface, 16) if interface else 0, serial, group)


def group_ports(
    matches: Iterable[PortMatch], roles: Mapping[str, tuple[str, ...]]
) -> list[FoundBoard]:
    """Ports of each USB device, given the board's roles in interface order."""
    groups: dict[str, list[PortMatch]] = {}
    for match in matches:
        groups.setdefault(match.group, []).append(match)
    found = []
    for ports in groups.values():
        ports.sort(key=lambda m: (m.interface, m.device))
        boards = ports[0].boards
        wanted = roles.get(boards[0], ("port",))
        by_role = dict(zip(wanted, (p.device for p in ports), strict=False))
        problem = None
        if len(ports) != len(wanted):
            problem = f"expected {len(wanted)} ports ({', '.join(wanted)}), found {len(ports)}"
        found.append(FoundBoard(boards, ports[0].serial, by_role, problem))
    return sorted(found, key=lambda f: (f.boards, f.serial, tuple(f.ports.values())))


def devices_snippet(found: FoundBoard) -> str:
    """The ``[[devices]]`` table to paste for one found board (first candidate named)."""
    lines = ["[[devices]]", f'board = "{found.boards[0]}"']
    if len(found.boards) > 1:
        lines[1] += f"  # or: {', '.join(found.boards[1:])}"
    ports = ", ".join(f'{role} = "{path}"' for role, path in found.ports.items())
    lines.append(f"ports = {{ {ports} }}")
    return "\n".join(lines) + "\n"


def usb_matches() -> tuple[dict[str, tuple[UsbMatch, ...]], dict[str, tuple[str, ...]]]:
    """Every installed board's USB matches and port roles (imports the board modules)."""
    rules, roles = {}, {}
    for name in available_boards():
        try:
            cls = load_board(name)
        except BoardError:
            continue
        if cls.usb:
            rules[name], roles[name] = cls.usb, cls.port_roles
    return rules, roles


def _sysfs_properties(device: Any) -> dict[str, str]:
    """ID_* properties from the USB parents' attributes (no udev database needed)."""
    props: dict[str, str] = {}
    interface = device.find_parent("usb", "usb_interface")
    usb = device.find_parent("usb", "usb_device")
    if usb is None:
        return props
    attributes = usb.attributes
    names = {
        "idVendor": "ID_VENDOR_ID",
        "idProduct": "ID_MODEL_ID",
        "manufacturer": "ID_VENDOR",
        "product": "ID_MODEL",
        "serial": "ID_SERIAL_SHORT",
    }
    for attribute, key in names.items():
        value = attributes.get(attribute)
        if value is not None:
            props[key] = value.decode(errors="replace").strip()
    if interface is not None and interface.attributes.get("bInterfaceNumber") is not None:
        number = interface.attributes.get("bInterfaceNumber")
        props["ID_USB_INTERFACE_NUM"] = number.decode().strip()
    props["ID_PATH"] = str(usb.device_path)
    return props


def list_usb_ttys() -> list[dict[str, str]]:
    """Properties of every USB tty on this machine (needs ``pyudev``)."""
    try:
        pyudev: Any = importlib.import_module("pyudev")
    except ImportError as exc:
        raise BoardError("listing USB boards needs the pyudev package") from exc
    found = []
    for device in pyudev.Context().list_devices(subsystem="tty"):
        props = {str(k): str(v) for k, v in dict(device.properties).items()}
        if "DEVNAME" not in props or device.find_parent("usb", "usb_device") is None:
            continue
        found.append({**_sysfs_properties(device), **props})
    return found
