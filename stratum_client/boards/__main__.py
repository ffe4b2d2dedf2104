"""``python -m stratum_client.boards``: bring one board up, watch it, switch it off.

A bench tool for a board on its own (the daemon runs boards from the config): opens the board,
powers it up, starts its chip driver (enumerate, ramp; no work is sent), runs the safety
loop and prints each poll's status as one JSON line, until SIGTERM or SIGINT, then powers
the board down and exits 0. Also ``--list`` (installed boards) and ``--devices`` (USB
boards found, with the ``[[devices]]`` table for each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import structlog

from stratum_client.asic.base import AsicDriver
from stratum_client.asic.registry import load_driver
from stratum_client.errors import StratumClientError
from stratum_client.logsetup import configure_logging

from .base import Board, BoardSpec
from .discovery import devices_snippet, group_ports, list_usb_ttys, match_port, usb_matches
from .registry import available_boards, load_board
from .runner import BoardRunner
from .safety_task import BoardStatus, SafetyHooks

__all__ = ["main"]

_log = structlog.get_logger(__name__)


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} must be KEY=VALUE, got {item!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stratum_client.boards")
    p.add_argument("--board", help="board name, e.g. bitaxe-gamma")
    p.add_argument("--port", action="append", default=[], help="ROLE=PATH (control=, data=)")
    p.add_argument("--frequency", type=float, default=None)
    p.add_argument("--voltage", type=float, default=None)
    p.add_argument("--board-option", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--driver-option", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--difficulty-scale", type=float, default=1.0)
    p.add_argument("--no-chain", action="store_true", help="do not start the chip driver")
    p.add_argument("--list", action="store_true", help="list installed boards")
    p.add_argument("--devices", action="store_true", help="list USB boards found")
    p.add_argument("--log-level", default="info")
    return p


class _Chain:
    """The chip driver and the safety hooks that stop, restart and retune it."""

    def __init__(self, board: Board, args: argparse.Namespace) -> None:
        self.board, self.args = board, args
        self.driver: AsicDriver | None = None

    async def start(self, mhz: float | None = None) -> None:
        if self.args.no_chain:
            return
        (chain, *_) = self.board.chains
        options = _pairs(self.args.driver_option, "driver option")
        spec = chain.to_device_spec(difficulty_scale=self.args.difficulty_scale, options=options)
        driver = load_driver(chain.driver)(spec)
        info = await driver.start()
        if mhz is not None:
            await driver.set_frequency(mhz)
        self.driver = driver
        _log.info("chain up", model=info.model, chips=info.chip_count, mhz=driver.frequency_mhz)

    async def stop(self, reason: str = "") -> None:
        driver, self.driver = self.driver, None
        if driver is not None:
            await driver.stop()

    async def retune(self, mhz: float) -> None:
        if self.driver is not None:
            await self.driver.set_frequency(mhz)


def _print_status(status: BoardStatus) -> None:
    print(json.dumps(status.as_dict()), flush=True)


async def _run(args: argparse.Namespace) -> int:
    spec = BoardSpec(board=args.board, ports=_pairs(args.port, "--port"),
                     frequency_mhz=args.frequency, core_voltage_v=args.voltage,
                     board_options=_pairs(args.board_option, "--board-option"))  # fmt: skip
    board = load_board(args.board)(spec)
    chain = _Chain(board, args)
    hooks = SafetyHooks(chain.stop, chain.start, chain.retune, _print_status)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with BoardRunner(board, hooks=hooks):
        try:
            await chain.start()
            await stop.wait()
        finally:
            await chain.stop()
    _log.info("board off", board=board.label, core=board.core_off)
    return 0


def _devices() -> int:
    rules, roles = usb_matches()
    matches = [m for props in list_usb_ttys() if (m := match_port(props, rules)) is not None]
    for found in group_ports(matches, roles):
        note = f"  # {found.problem}" if found.problem else ""
        print(f"# serial {found.serial or '?'}{note}\n{devices_snippet(found)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, "console", {})
    try:
        if args.list:
            print("\n".join(f"{n} = {t}" for n, t in available_boards().items()))
            return 0
        if args.devices:
            return _devices()
        if not args.board:
            raise SystemExit("--board is required (or --list / --devices)")
        return asyncio.run(_run(args))
    except StratumClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
