"""Command-line entry point: ``stratum-client <command> ...``.

Each sub-command lives in its own module under :mod:`stratum_client.commands` and exposes
``add_parser(subparsers)``; modules are imported here so ``--help`` lists them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from stratum_client import __version__
from stratum_client.errors import StratumClientError

__all__ = ["main"]

COMMAND_MODULES: tuple[str, ...] = (
    "run", "check", "demo", "pool", "share", "devices", "energy", "emulate",
)  # fmt: skip
"""Sub-command modules under ``stratum_client.commands``, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="stratum-client",
        description="Stratum v1 mining daemon for BM13xx ASIC chips.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"stratum_client.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; our own errors become a one-line message and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except StratumClientError as exc:
        print(f"stratum-client {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
