"""``stratum-client demo``: the whole miner on one machine, with nothing to set up.

One process runs a local Stratum pool that validates every share the way public-pool does
(:class:`LocalPool` in strict mode: the version rebuilt by XOR on a regtest-style
0x30000000 template, shares judged at the difficulty in force), two emulated chip chains
on pseudo-terminals that speak the real serial protocol and really hash, an emulated
board beside them (``bitaxe-gamma`` unless ``--board`` names another or ``none``), so a
run goes through the whole board path too: power-up, safety loop, measured power,
power-down. The daemon itself is configured from the embedded :data:`DEMO_CONFIG`
(``configs/demo.toml`` is the same file for reading) plus the board's ``[[devices]]``
table. A status line shows what the daemon reports; ``--duration`` or Ctrl-C ends the
run with a summary, and the exit status says whether the pool accepted shares and
rejected none, so the demo is a smoke test too. The pool takes no vardiff steps: a share
on the wire at a step would be refused, and the exit status would then hang on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Final, TextIO

from stratum_client import eventloop
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.commands.board_emulation import BOARDS, board_devices_table, emulated_board
from stratum_client.commands.demo_summary import DemoSummary, board_summary, demo_summary
from stratum_client.config import Config, parse_config
from stratum_client.daemon.app import Daemon, Service
from stratum_client.daemon.telemetry import telemetry_services
from stratum_client.errors import InputError
from stratum_client.logsetup import LEVELS, configure_logging
from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import serve_chains

__all__ = ["DEFAULT_BOARD", "DEMO_CONFIG", "DemoSummary", "add_parser", "demo_config", "run"]

DIFFICULTY_SCALE: Final = 2.0**-22
"""Emulated chips report nonces at ticket 256 × 2⁻²² = 2⁻¹⁴: a few per second per core."""
POOL_DIFFICULTY: Final = 2.0**-13
"""About every second nonce is a share, so the demo shows accepted shares within seconds."""
JOB_INTERVAL: Final = 10.0
"""Seconds between the pool's new (non-clean) jobs."""
POOL_PORT: Final = 13333
"""The local pool's port: one no common pool uses (ckpool and public-pool hold 3333)."""
BLOCK_INTERVAL: Final = 45.0
"""Seconds between new blocks (clean jobs), so a run shows the chips being flushed."""
DEFAULT_BOARD: Final = "bitaxe-gamma"
"""The emulated board that mines beside the raw chains unless ``--board`` says otherwise."""
NO_BOARD: Final = "none"

DEMO_CONFIG: Final = """\
# The self-contained demo: a local test pool and two emulated chains behind
# pseudo-terminals that `stratum-client demo` creates. Nothing leaves the machine.
# The demo fills in the pool address, the pty paths and the API ports.

[daemon]
log_level = "warning"

[[pools]]
name = "local-demo-pool"
url = "{pool_url}"
user = "demo.worker"

[pool_policy]
connect_timeout = 5
backoff_max = 10

[[devices]]
name = "demo-bm1366"
driver = "bm1366"
port = "{bm1366_port}"
chips = {bm1366_chips}
difficulty_scale = 2.384185791015625e-07  # 2**-22: emulated chips hash on a CPU
options = {{ ramp_step_delay = 0 }}

[[devices]]
name = "demo-bm1397"
driver = "bm1397"
port = "{bm1397_port}"
chips = {bm1397_chips}
difficulty_scale = 2.384185791015625e-07
options = {{ ramp_step_delay = 0 }}

[api]
cgminer_enabled = {cgminer_enabled}
cgminer_listen = "127.0.0.1:{cgminer_port}"
cgminer_allow = ["127.0.0.1/32"]
rest_enabled = {rest_enabled}
rest_listen = "127.0.0.1:{rest_port}"
"""
"""The demo's config; ``{...}`` fields are filled in for each run."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="mine against a local pool with emulated chips (no hardware, no account)",
        description="Run a local Stratum pool, emulated BM1366 and BM1397 chains, an "
        "emulated board beside them and the daemon in one process, with the "
        "cgminer-compatible and REST APIs on 127.0.0.1.",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON")
    parser.add_argument("--chips-1366", type=int, default=4, help="BM1366 chips (0: no chain)")
    parser.add_argument("--chips-1397", type=int, default=1, help="BM1397 chips (0: no chain)")
    parser.add_argument(
        "--pool-port",
        type=int,
        default=POOL_PORT,
        help="local pool port (default %(default)s, a free one if taken; 0: any free one)",
    )
    parser.add_argument("--cgminer-port", type=int, default=4028, help="0 turns it off")
    parser.add_argument("--rest-port", type=int, default=8080, help="0 turns it off")
    parser.add_argument(
        "--board",
        choices=(*BOARDS, NO_BOARD),
        default=DEFAULT_BOARD,
        help="the emulated board that mines beside the chains (default %(default)s; "
        "power-up, safety loop and power-down included); none leaves it out",
    )
    parser.add_argument("--log-level", choices=tuple(LEVELS), default="warning")
    parser.set_defaults(func=run)


def demo_config(
    pool_url: str,
    ports: dict[str, str],
    chips: dict[str, int],
    *,
    cgminer_port: int = 4028,
    rest_port: int = 8080,
) -> Config:
    """The embedded config for one run; a chain with 0 chips is left out."""
    text = DEMO_CONFIG.format(
        pool_url=pool_url,
        bm1366_port=ports["bm1366"],
        bm1397_port=ports["bm1397"],
        bm1366_chips=max(chips["bm1366"], 1),
        bm1397_chips=max(chips["bm1397"], 1),
        cgminer_enabled=str(cgminer_port > 0).lower(),
        cgminer_port=cgminer_port or 4028,
        rest_enabled=str(rest_port > 0).lower(),
        rest_port=rest_port or 8080,
    )
    config = parse_config(text, source="the embedded demo config")
    return replace(config, devices=tuple(d for d in config.devices if chips[d.driver] > 0))


def _checked(args: argparse.Namespace) -> dict[str, int]:
    chips = {"bm1366": args.chips_1366, "bm1397": args.chips_1397}
    for model, count in chips.items():
        if not 0 <= count <= 64:
            raise InputError(f"--chips-{model[2:]}", f"must be 0 to 64, got {count}")
    if not any(chips.values()) and args.board == NO_BOARD:
        raise InputError(
            "--chips-1366", "both chains are off and --board is none: nothing to mine on"
        )
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration", f"must be > 0, got {args.duration}")
    for flag, port in (
        ("--pool-port", args.pool_port),
        ("--cgminer-port", args.cgminer_port),
        ("--rest-port", args.rest_port),
    ):
        if not 0 <= port <= 65535:
            raise InputError(flag, f"must be a TCP port 0..65535, got {port}")
    return chips


def _demo_services(config: Config) -> list[Service]:
    """The companions the demo runs beside mining: the APIs its config turns on."""
    return telemetry_services(config)


def run(args: argparse.Namespace) -> int:
    """Run the demo until ``--duration`` or a signal; 0 if shares were accepted, none rejected."""
    chips = _checked(args)
    configure_logging(args.log_level, "console", {})
    summary = eventloop.run(_demo(args, chips))
    print(summary.line(), flush=True)
    if args.summary_json is not None:
        record = {**asdict(summary), "ok": summary.ok}
        args.summary_json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0 if summary.ok else 1


async def _demo(args: argparse.Namespace, chips: dict[str, int]) -> DemoSummary:
    with tempfile.TemporaryDirectory(prefix="stratum-client-demo-") as workdir:
        ports = {"bm1366": f"{workdir}/asic0", "bm1397": f"{workdir}/asic1"}
        emulated = [
            (EmulatedChain(model, count, difficulty_scale=DIFFICULTY_SCALE), ports[model])
            for model, count in chips.items()
            if count > 0
        ]
        async with (
            _local_pool(args.pool_port) as pool,
            serve_chains([c for c, _ in emulated], [p for _, p in emulated]),
            _board(args.board, Path(workdir)) as emulator,
            _new_blocks(pool),
        ):
            config = demo_config(
                pool.url, ports, chips, cgminer_port=args.cgminer_port, rest_port=args.rest_port
            )
            if emulator is not None:
                config = _with_board(config, pool.url, args.board, emulator)
            # settings made through the APIs during a demo end with it
            config = replace(config, daemon=replace(config.daemon, state_dir=Path(workdir)))
            return await _mine(config, pool, args.duration, emulator)


@contextlib.asynccontextmanager
async def _board(name: str, workdir: Path) -> AsyncIterator[BoardEmulator | None]:
    """The emulated board on two ptys in ``workdir``, or None for ``--board none``."""
    if name == NO_BOARD:
        yield None
        return
    control, data = workdir / "control", workdir / "data"
    scale = DIFFICULTY_SCALE
    async with emulated_board(name, control, data, difficulty_scale=scale, hashrate=None) as board:
        yield board


def _with_board(config: Config, pool_url: str, board: str, emulator: BoardEmulator) -> Config:
    """``config`` with the board's ``[[devices]]`` table after the raw chains."""
    table = board_devices_table(
        board, emulator, difficulty_scale=DIFFICULTY_SCALE, name=f"demo-{board}"
    )
    pool_table = f'[[pools]]\nurl = "{pool_url}"\nuser = "demo.worker"\n'
    devices = parse_config(pool_table + table, source="the demo's board table").devices
    return replace(config, devices=(*config.devices, *devices))


async def _mine(
    config: Config, pool: LocalPool, duration: float | None, emulator: BoardEmulator | None
) -> DemoSummary:
    status = _StatusLine(sys.stdout)
    daemon = Daemon(config, emit_status=status.show, services=_demo_services(config))
    started = time.monotonic()
    stopper = None
    if duration is not None:
        stopper = asyncio.get_running_loop().call_later(duration, daemon.request_stop)
    try:
        await daemon.run()
    finally:
        if stopper is not None:
            stopper.cancel()
        status.end()
    snap, board = daemon.snapshot(), None
    if emulator is not None:
        (chain,) = daemon.boards.values()
        board = board_summary(chain.entry.spec.board, chain, emulator, snap)
    return demo_summary(snap, pool, time.monotonic() - started, board)


@contextlib.asynccontextmanager
async def _local_pool(port: int) -> AsyncIterator[LocalPool]:
    """The strict local pool on ``port``, or on a free port if that one is taken."""
    pool = LocalPool(strict=True, difficulty=POOL_DIFFICULTY, job_interval=JOB_INTERVAL, port=port)
    try:
        await pool.start()
    except OSError as exc:
        if port == 0:
            raise
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"pool port {port} is not free ({why}); using a free one", file=sys.stderr)
        pool.port = 0
        await pool.start()
    try:
        yield pool
    finally:
        await pool.stop()


@contextlib.asynccontextmanager
async def _new_blocks(pool: LocalPool) -> AsyncIterator[None]:
    """Announce a new block every :data:`BLOCK_INTERVAL` seconds (clean jobs)."""

    async def announce() -> None:
        while True:
            await asyncio.sleep(BLOCK_INTERVAL)
            await pool.broadcast_new_block()

    task = asyncio.create_task(announce(), name="demo-blocks")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _StatusLine:
    """The daemon's status line: redrawn in place on a terminal, one line per second else."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._drawn = False

    def show(self, line: str) -> None:
        if self._tty:
            self._stream.write(f"\r\x1b[K{line}")
            self._drawn = True
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def end(self) -> None:
        if self._drawn:
            self._stream.write("\n")
