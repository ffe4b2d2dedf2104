"""``stratum-client check``: validate a config file without starting anything.

Every problem in the file is listed in one run, each with its dotted key and, when it
can be found, the line it is on, so a file with three mistakes takes one edit, not three
restarts. A file that reads cleanly is then checked the way the daemon checks each chain
as it starts it, still without opening a port: the driver is installed, accepts the
chain's ``options`` and frequency, and ``[energy]`` has power figures for its chip.
Exit status 0 when everything is valid, 1 when it is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stratum_client.asic.registry import load_driver
from stratum_client.config import DEFAULT_CONFIG_PATH, Config, load_config
from stratum_client.errors import ConfigError, StratumClientError

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
        return _report(args.config, [str(error) for error in exc.errors])
    problems = _chain_problems(config)
    if problems:
        return _report(args.config, problems)
    pools, devices = len(config.pools), len(config.devices)
    print(f"{args.config}: ok ({pools} pool(s), {devices} device(s))")
    return 0


def _chain_problems(config: Config) -> list[str]:
    """What the daemon would find only when it starts each enabled chain."""
    problems = []
    for index, device in enumerate(config.devices):
        if not device.enabled:
            continue
        try:
            driver = load_driver(device.driver)
            driver(device.to_spec())  # validates options and frequency; opens nothing
            if config.energy.enabled:
                chips, mhz = device.chips, device.frequency_mhz
                config.energy.device_power(device.name, driver.model, chips, mhz)
        except StratumClientError as exc:
            problems.append(f"devices[{index}] ({device.name}): {exc}")
    return problems


def _report(path: Path, problems: list[str]) -> int:
    count = len(problems)
    print(f"{path}: {count} problem{'s' if count > 1 else ''}", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1
