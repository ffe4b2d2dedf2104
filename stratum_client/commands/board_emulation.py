"""Emulated boards for the CLI: ``emulate --board NAME`` and ``demo --board NAME``.

An emulated Bitaxe serves two ptys, as the real one shows two USB ports: ``control``
(bitaxe-raw: regulator, reset, fan, sensors) and ``data`` (the ASIC UART, whose chips
answer only while the board has powered them). ``emulate --board`` prints both paths
and the ``[[devices]]`` table that drives them; the demo mines on one through the whole
board path (power-up, safety loop, power-down).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from stratum_client.boards.emulator.board import PROFILES
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.errors import InputError

__all__ = ["BOARDS", "board_devices_table", "emulated_board", "serve_board"]

BOARDS = tuple(sorted(PROFILES))
"""Boards the emulator can play."""


def _links(link: str) -> tuple[Path, Path]:
    """``--link`` as a directory-and-stem: ``/tmp/asic0`` gives ``/tmp/asic0-control``."""
    return Path(f"{link}-control"), Path(f"{link}-data")


@contextlib.asynccontextmanager
async def emulated_board(
    board: str, control: Path, data: Path, *, difficulty_scale: float, hashrate: float | None
) -> AsyncIterator[BoardEmulator]:
    """One emulated board served on ``control`` and ``data`` while the block runs."""
    try:
        emulator = BoardEmulator(
            board, control, data, difficulty_scale=difficulty_scale, hashrate=hashrate
        )
    except ValueError as exc:
        raise InputError("--board", str(exc)) from None
    async with emulator:
        yield emulator


def board_devices_table(
    board: str, emulator: BoardEmulator, *, difficulty_scale: float, name: str = "board0"
) -> str:
    """The ``[[devices]]`` table that drives ``emulator`` (for the user, and the demo)."""
    return (
        f'[[devices]]\nname = "{name}"\nboard = "{board}"\n'
        f'ports = {{ control = "{emulator.control_path}", data = "{emulator.data_path}" }}\n'
        f"difficulty_scale = {difficulty_scale!r}\n"
        "options = { ramp_step_delay = 0 }\n"
    )


def serve_board(args: argparse.Namespace) -> int:
    """``emulate --board``: serve one board until SIGINT/SIGTERM or ``--duration``."""
    control, data = _links(args.link)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with emulated_board(
            args.board, control, data, difficulty_scale=args.difficulty_scale,
            hashrate=args.hashrate,
        ) as emulator:  # fmt: skip
            print(f"{args.board} control on {emulator.control_path}", flush=True)
            print(f"{args.board} data on {emulator.data_path}", flush=True)
            table = board_devices_table(
                args.board, emulator, difficulty_scale=args.difficulty_scale
            )
            print(f"# paste into the config:\n{table}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
            chain = emulator.chain
            print(f"summary {emulator.data_path}: {chain.hashes} hashes", flush=True)

    try:
        asyncio.run(main())
    except OSError as exc:
        raise InputError("--link", f"cannot create the pty links: {exc}") from exc
    return 0
