"""``stratum-client run``: the mining daemon, as systemd starts it.

Logging is configured here and nowhere else: the file's ``[daemon]`` settings, with
``--log-format``/``--log-level`` on top (they survive a SIGHUP reload, so a debugging
session started from the command line stays verbose).

The companions ``[api]``, ``[telemetry.mqtt]`` and ``[energy]`` enable start with the
daemon; a reload does not restart them (their settings take effect after a restart).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stratum_client import eventloop
from stratum_client.config import DEFAULT_CONFIG_PATH, Config, load_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.energy import energy_services
from stratum_client.daemon.telemetry import telemetry_services
from stratum_client.logsetup import LEVELS, configure_logging

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run the mining daemon",
        description="Connect to the configured pools and mine on the configured chains "
        "until SIGTERM or SIGINT; SIGHUP reloads the pool list and log levels.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="config file (default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        help="override [daemon] log_format",
    )
    parser.add_argument("--log-level", choices=tuple(LEVELS), help="override [daemon] log_level")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config (errors exit 2 through the CLI), set up logging, run the daemon."""
    config = load_config(args.config)

    def apply_logging(current: Config) -> None:
        configure_logging(
            args.log_level or current.daemon.log_level,
            args.log_format or current.daemon.log_format,
            current.daemon.log_levels,
        )

    apply_logging(config)
    services = [*telemetry_services(config), *energy_services(config)]
    daemon = Daemon(config, config_path=args.config, on_reload=apply_logging, services=services)
    return eventloop.run(daemon.run(), config.daemon.event_loop)
