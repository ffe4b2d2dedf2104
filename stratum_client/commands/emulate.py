"""``stratum-client emulate``: serve emulated BM13xx chains on pseudo-terminals.

Each chain speaks the real serial protocol at a stable path (a symlink to a pty) and
really hashes, so the daemon or a test can drive it like hardware. Because a CPU hashes
about a million times slower than a chip, the chain reports nonces at the programmed
ticket difficulty × ``--difficulty-scale``; the driver must be configured with the same
``difficulty_scale``. The default, 2⁻²², turns the usual ticket 256 into difficulty
2⁻¹⁴: one nonce per 262 144 hashes, a few per second per CPU core.

One line per chain is printed (and flushed) when it is plugged in, so a script can wait
for the path; a summary follows on SIGINT, SIGTERM or after ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import Iterator

from stratum_client.commands.board_emulation import BOARDS, serve_board
from stratum_client.errors import InputError
from stratum_client.logsetup import LEVELS, configure_logging
from stratum_client_bm13xx.emulator import BRIDGES, EMULATED_MODELS
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.faults import Faults
from stratum_client_bm13xx.emulator.server import (
    DEFAULT_STEP_HASHES,
    EmulatorServer,
    UnplugPlan,
    run_emulators,
)

__all__ = ["DEFAULT_SCALE", "add_parser", "expand_links", "run"]

DEFAULT_SCALE = 2.0**-22
_RECORD_LIMIT = 1000
"""Reported nonces each chain remembers: the CLI only prints counts."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``emulate`` sub-command."""
    parser = subparsers.add_parser(
        "emulate",
        help="serve emulated BM13xx chip chains on pseudo-terminals",
        description="Serve emulated chip chains that speak the BM13xx serial protocol on "
        "pseudo-terminals and really hash. Point a [[devices]] port at the printed path and "
        "set its difficulty_scale to the same --difficulty-scale.",
    )
    chains = parser.add_argument_group("chains")
    chains.add_argument(
        "--chip",
        default="bm1366",
        type=str.lower,
        choices=EMULATED_MODELS,
        help="chip model (default %(default)s)",
    )
    chains.add_argument("--chips", type=int, default=1, help="chips per chain (default 1)")
    chains.add_argument("--board", choices=BOARDS, help="serve a whole board instead: "
                        "its control and data ports at --link + '-control' / '-data'")  # fmt: skip
    chains.add_argument(
        "--link",
        default="/tmp/asic0",  # noqa: S108 - a symlink the user asks for, in the usual place
        help="path of the pty symlink (default %(default)s); with --chains N, '{n}' is "
        "replaced by the chain number, else a trailing number counts up (asic0, asic1, …) "
        "or one is appended",
    )
    chains.add_argument("--chains", type=int, default=1, help="number of chains (default 1)")
    chains.add_argument(
        "--difficulty-scale",
        type=float,
        default=DEFAULT_SCALE,
        help="report nonces at ticket difficulty × this; the driver needs the same "
        "difficulty_scale (default 2**-22)",
    )
    chains.add_argument("--hashrate", type=float, help="cap each chain at this many H/s")
    chains.add_argument(
        "--step-hashes",
        type=int,
        default=DEFAULT_STEP_HASHES,
        help="hashes between yields to the loop (default %(default)s); with --hashrate also "
        "the smallest burst, so keep it small with --silicon-time",
    )
    chains.add_argument(
        "--bridge",
        choices=sorted(BRIDGES),
        help="model a USB-serial bridge: the chips stop being heard at a rate it cannot "
        "carry (e.g. ft230x above 3 Mbaud), as with the real part",
    )
    chains.add_argument(
        "--silicon-time",
        action="store_true",
        help="end each job when real chips would have exhausted it, then idle until the "
        "next: shows how much a job interval lets silicon hash",
    )
    chains.add_argument("--seed", type=int, help="seed for reproducible fault injection")
    _add_fault_options(parser)
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--duration", type=float, help="stop after this many seconds")
    run_group.add_argument("--log-level", choices=tuple(LEVELS), default="warning")
    parser.set_defaults(func=run)


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("faults")
    faults.add_argument("--corrupt-rate", type=float, default=0.0, help="fraction of reply bytes")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="fraction of replies")
    faults.add_argument(
        "--dead-chip",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="chain position that never finds nonces (repeatable)",
    )
    faults.add_argument(
        "--duplicate-nonces", type=int, default=0, metavar="N", help="send each nonce N more times"
    )
    faults.add_argument(
        "--faults-on-registers",
        action="store_true",
        help="also corrupt/drop register replies (chip-id replies included)",
    )
    faults.add_argument("--unplug-after", type=float, metavar="S", help="unplug after S seconds")
    faults.add_argument(
        "--unplug-for", type=float, default=2.0, metavar="S", help="stay unplugged S seconds"
    )
    faults.add_argument(
        "--unplug-cycles", type=int, default=1, metavar="N", help="repeat N times (0: forever)"
    )


def expand_links(link: str, count: int) -> list[str]:
    """The link path of each of ``count`` chains (see ``--link``)."""
    if "{n}" in link:
        paths = [link.replace("{n}", str(n)) for n in range(count)]
    elif count == 1:
        paths = [link]
    elif match := re.search(r"(\d+)$", link):
        first = int(match.group(1))
        paths = [link[: match.start()] + str(first + n) for n in range(count)]
    else:
        paths = [f"{link}{n}" for n in range(count)]
    if len(set(paths)) != count:
        raise InputError("--link", f"{link!r} does not give {count} distinct paths")
    return paths


def _faults(args: argparse.Namespace) -> Faults:
    try:
        faults = Faults(
            corrupt_rate=args.corrupt_rate,
            drop_rate=args.drop_rate,
            dead_chips=frozenset(args.dead_chip),
            duplicate_nonces=args.duplicate_nonces,
            register_replies=args.faults_on_registers,
        )
    except ValueError as exc:
        raise InputError("faults", str(exc)) from exc
    return faults


def _chains(args: argparse.Namespace) -> list[EmulatedChain]:
    if args.chains < 1:
        raise InputError("--chains", f"must be ≥ 1, got {args.chains}")
    chains = []
    for n in range(args.chains):
        seed = None if args.seed is None else args.seed + n
        try:
            chain = EmulatedChain(
                args.chip,
                args.chips,
                difficulty_scale=args.difficulty_scale,
                faults=_faults(args),
                seed=seed,
                record_limit=_RECORD_LIMIT,
            )
        except ValueError as exc:
            raise InputError("emulate", str(exc)) from exc
        chains.append(chain)
    return chains


def _plan(args: argparse.Namespace) -> UnplugPlan | None:
    if args.unplug_after is None:
        return None
    if args.unplug_after <= 0 or args.unplug_for < 0 or args.unplug_cycles < 0:
        raise InputError("--unplug-after", "times must be positive and cycles ≥ 0")
    return UnplugPlan(args.unplug_after, args.unplug_for, args.unplug_cycles)


def _checked(args: argparse.Namespace) -> None:
    if args.hashrate is not None and not args.hashrate > 0:
        raise InputError("--hashrate", f"must be > 0, got {args.hashrate}")
    if args.step_hashes < 1:
        raise InputError("--step-hashes", f"must be ≥ 1, got {args.step_hashes}")
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration", f"must be > 0, got {args.duration}")


def run(args: argparse.Namespace) -> int:
    """Serve the chains until a signal or ``--duration``; print a summary; exit 0."""
    configure_logging(args.log_level, "console", {})
    _checked(args)
    if args.board:
        return serve_board(args)
    chains = _chains(args)
    links = expand_links(args.link, args.chains)
    plan = _plan(args)
    times = "×" if _encodable("×") else "x"
    label = f"{args.chip} {times}{args.chips}"

    def report(event: str, server: EmulatorServer) -> None:
        if event == "plugged":
            print(f"{label} on {server.path} -> {server.device}", flush=True)
        else:
            print(f"{label} on {server.path} unplugged", flush=True)

    async def main() -> tuple[list[EmulatorServer], float]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        started = loop.time()
        with _stop_on_signals(loop, stop):
            servers = await run_emulators(
                chains,
                links,
                hashrate=args.hashrate,
                step_hashes=args.step_hashes,
                bridge=BRIDGES[args.bridge] if args.bridge else None,
                silicon_time=args.silicon_time,
                stop=stop,
                duration=args.duration,
                unplug=plan,
                on_event=report,
            )
        return servers, loop.time() - started

    try:
        servers, elapsed = asyncio.run(main())
    except OSError as exc:
        raise InputError("--link", f"cannot create the pty link: {exc}") from exc
    for line in _summary(servers, elapsed):
        print(line, flush=True)
    return 0


@contextlib.contextmanager
def _stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Iterator[None]:
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _summary(servers: list[EmulatorServer], elapsed: float) -> Iterator[str]:
    seconds = max(elapsed, 1e-9)
    for server in servers:
        chain = server.chain
        injected = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in chain.faults.injected.items())
        extra = ""
        if server.bridge is not None:
            extra += f"; {server.bytes_unheard} reply bytes the bridge could not carry"
        if server.pace is not None:
            extra += f"; {server.pace.jobs_exhausted} of {chain.jobs_received} jobs ran out"
        yield (
            f"summary {server.path}: {chain.hashes} hashes in {elapsed:.1f} s "
            f"({chain.hashes / seconds / 1000:.0f} kH/s); {injected}{extra}"
        )


def _encodable(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
