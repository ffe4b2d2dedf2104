"""``stratum-client pool``: the local validating pool on an address of your choosing.

For trying the daemon by hand against something that judges every share: run this in
one terminal, ``stratum-client emulate`` in another and ``stratum-client run`` with a
config whose ``[[pools]]`` url points here (``configs/demo.toml`` does, on
:data:`DEFAULT_PORT`). The pool is :class:`LocalPool` (strict by default: it judges like
public-pool) and logs every share with the header and hash it rebuilt. The default port
is one no common pool uses, so a real pool on the same host (ckpool and public-pool
listen on 3333) is not in the way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from urllib.parse import urlsplit

from stratum_client import eventloop
from stratum_client.errors import InputError
from stratum_client.logsetup import LEVELS, configure_logging
from stratum_client.testing.pool import LocalPool

__all__ = ["DEFAULT_LISTEN", "DEFAULT_PORT", "add_parser", "parse_listen", "run"]

DEFAULT_PORT = 13333
"""Not 3333/3334 (ckpool, public-pool, most public pools) nor any other common pool port."""
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``pool`` sub-command."""
    parser = subparsers.add_parser(
        "pool",
        help="serve the local validating Stratum pool (for trying the daemon by hand)",
        description="Serve a local Stratum v1 pool that rebuilds and hashes every share, "
        "until Ctrl-C or SIGTERM; shares are logged with their header and hash.",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="address to listen on (default %(default)s; port 0 picks a free one)",
    )
    parser.add_argument(
        "--difficulty", type=float, default=2.0**-13, help="share difficulty (default 2**-13)"
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="judge with BIP310 version rolling and grace for the previous difficulty "
        "instead of public-pool's strict rules",
    )
    parser.add_argument(
        "--job-interval", type=float, default=10.0, help="seconds between new jobs (0: none)"
    )
    parser.add_argument(
        "--block-interval",
        type=float,
        default=60.0,
        help="seconds between new blocks, i.e. clean jobs (0: none)",
    )
    parser.add_argument("--log-level", choices=tuple(LEVELS), default="info")
    parser.set_defaults(func=run)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets) → (host, port); InputError names ``--listen``."""
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InputError("--listen", f"{text!r} is not HOST:PORT ({exc})") from None
    if not host or port is None or parts.path or parts.username:
        raise InputError("--listen", f"{text!r} is not HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, port


def _checked(args: argparse.Namespace) -> tuple[str, int]:
    listen = parse_listen(args.listen)
    if not args.difficulty > 0:
        raise InputError("--difficulty", f"must be > 0, got {args.difficulty}")
    for flag, value in (
        ("--job-interval", args.job_interval),
        ("--block-interval", args.block_interval),
    ):
        if not value >= 0:
            raise InputError(flag, f"must be 0 or more seconds, got {value}")
    return listen


def run(args: argparse.Namespace) -> int:
    """Serve until a signal; a port already taken is one clear error (exit 2)."""
    host, port = _checked(args)
    configure_logging(args.log_level, "auto", {})
    pool = LocalPool(
        host=host,
        port=port,
        difficulty=args.difficulty,
        strict=not args.lenient,
        job_interval=args.job_interval or None,
    )
    return eventloop.run(_serve(pool, args.block_interval))


async def _serve(pool: LocalPool, block_interval: float) -> int:
    try:
        await pool.start()
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError("--listen", f"cannot listen on {pool.host}:{pool.port} ({why})") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"local pool listening on {pool.url} (difficulty {pool.difficulty:g})", flush=True)
    blocks = asyncio.create_task(_new_blocks(pool, block_interval), name="pool-blocks")
    try:
        await stop.wait()
    finally:
        blocks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await blocks
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await pool.stop()
    print(
        f"local pool stopped: {len(pool.accepted)} accepted, {len(pool.rejected)} rejected",
        file=sys.stdout,
        flush=True,
    )
    return 0


async def _new_blocks(pool: LocalPool, interval: float) -> None:
    if not interval:
        return
    while True:
        await asyncio.sleep(interval)
        await pool.broadcast_new_block()
