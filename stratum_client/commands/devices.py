"""``stratum-client devices``: which serial ports exist, and which chips answer on one.

Listing only reads what the OS reports; ``--probe PORT`` asks each installed driver to
identify the chips on the port (the BM13xx one broadcasts a chip-id read at 115 200 baud)
and prints what answered. That is the first thing to try when a
configured device does not start: it tells a wrong port, an unpowered board and a wrong
chip model apart without starting the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from stratum_client.asic.detect import PortInfo, ProbeResult
from stratum_client.asic.registry import detect_chain
from stratum_client.asic.transport import list_ports
from stratum_client.commands.devices_boards import local_boards_text
from stratum_client.logsetup import configure_logging

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``devices`` sub-command."""
    parser = subparsers.add_parser(
        "devices",
        help="list serial ports, or probe one for BM13xx chips",
        description="List serial ports (likely miners marked with *), or probe one port.",
    )
    parser.add_argument("--probe", metavar="PORT", help="broadcast a chip-id read on PORT")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--boards", action="store_true", help="list only USB mining boards, "
                        "each with the [[devices]] table to paste")  # fmt: skip
    parser.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        help="seconds to wait for the first chip to answer (default %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List ports, or probe one; exit status 1 when a probe finds no chips."""
    configure_logging("warning", "console", {})
    if args.boards:
        print(local_boards_text())
        return 0
    if args.probe is None:
        ports = list_ports()
        print(_ports_json(ports) if args.json else _ports_text(ports))
        if not args.json:
            print(f"\n{local_boards_text()}")
        return 0
    result = asyncio.run(detect_chain(args.probe, timeout=args.timeout))
    print(json.dumps(result.as_dict(), indent=2) if args.json else _probe_text(result))
    return 0 if result.chip_count else 1


def _ports_text(ports: list[PortInfo]) -> str:
    if not ports:
        return "no serial ports found"
    lines = [_port_line(" ", "PORT", "USB ID", "MAKER", "DESCRIPTION  [* WHY A MINER]")]
    for port in ports:
        mark = "*" if port.likely_miner else " "
        maker = port.manufacturer or "-"
        line = _port_line(mark, port.device, port.usb_id or "-", maker, port.description)
        if port.hint:
            line += f"  [{port.hint}]"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _port_line(mark: str, device: str, usb_id: str, maker: str, description: str) -> str:
    """One row of the listing; the header uses it too, so the columns line up."""
    return f"{mark} {device:<24} {usb_id:<9}  {maker:<20} {description}"


def _ports_json(ports: list[PortInfo]) -> str:
    return json.dumps(
        [
            {
                "device": p.device,
                "description": p.description,
                "usb_id": p.usb_id or None,
                "manufacturer": p.manufacturer,
                "product": p.product,
                "serial_number": p.serial_number,
                "likely_miner": p.likely_miner,
                "hint": p.hint,
            }
            for p in ports
        ],
        indent=2,
    )


def _probe_text(result: ProbeResult) -> str:
    if not result.chip_count:
        return f"{result.port}: no chips answered"
    models = ", ".join(f"{count} × {name}" for name, count in result.models.items())
    return f"{result.port}: {result.chip_count} chip(s): {models}"
