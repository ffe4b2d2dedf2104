"""``stratum-client check``: validate a config file without starting anything.

Every problem in the file is listed in one run, each with its dotted key and, when it
can be found, the line it is on, so a file with three mistakes takes one edit, not three
restarts. Exit status 0 when the file is valid, 1 when it is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stratum_client.config import DEFAULT_CONFIG_PATH, load_config
from stratum_client.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``check`` sub-command."""
    parser = subparsers.add_parser(
        "check",
        help="validate a config file and list every problem in it",
        description="Read and validate a config file the way the daemon does at start, "
        "and list every problem found; nothing is started.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="config file (default %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print ``ok`` with a summary, or every problem (to stderr) and return 1."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        count = len(exc.errors)
        print(f"{args.config}: {count} problem{'s' if count > 1 else ''}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    pools, devices = len(config.pools), len(config.devices)
    print(f"{args.config}: ok ({pools} pool(s), {devices} device(s))")
    return 0
