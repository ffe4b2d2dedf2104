"""``python -m stratum_client.boards.emulator --board bitaxe-gamma``: serve one board.

Prints the two port paths as one JSON line on stdout (``{"control": ..., "data": ...}``)
once they exist, logs to stderr, and serves until interrupted. Point a board's control
and data ports at them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from pathlib import Path

from stratum_client.boards.codecs.bitaxe_raw import Framing
from stratum_client.logsetup import configure_logging

from .board import PROFILES
from .server import BoardEmulator
from .thermal import ThermalParams

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stratum_client.boards.emulator")
    parser.add_argument("--board", required=True, choices=sorted(PROFILES))
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the two symlinks go (default: a temp dir)"
    )
    parser.add_argument("--framing", choices=[f.value for f in Framing], default="v0")
    parser.add_argument("--ambient", type=float, default=25.0, help="ambient °C")
    parser.add_argument("--difficulty-scale", type=float, default=1.0)
    parser.add_argument("--hashrate", type=float, default=None, help="cap in H/s")
    parser.add_argument("--log-level", default="info")
    return parser


async def _serve(args: argparse.Namespace, directory: Path) -> None:
    emulator = BoardEmulator(
        args.board,
        directory / "control",
        directory / "data",
        thermal=ThermalParams(ambient_c=args.ambient),
        framing=Framing(args.framing),
        difficulty_scale=args.difficulty_scale,
        hashrate=args.hashrate,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        ports = {"control": emulator.control_path, "data": emulator.data_path}
        print(json.dumps(ports), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, "console", {})
    directory: Path = args.dir or Path(tempfile.mkdtemp(prefix="stratum-client-board-"))
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
