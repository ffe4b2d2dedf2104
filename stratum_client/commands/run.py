"""``stratum-client run``: the mining daemon, as systemd starts it.

Logging is configured here and nowhere else: the file's ``[daemon]`` settings, with
``--log-format``/``--log-level`` on top (they survive a SIGHUP reload, so a debugging
session started from the command line stays verbose).

The companions ``[api]``, ``[telemetry.mqtt]``, ``[energy]`` and ``[alerts]`` enable start with the
daemon; a reload does not restart them (their settings take effect after a restart).

On a terminal (stderr is a TTY and the log format is not forced to JSON) a person is
watching: the status line systemd gets is also drawn at the bottom of the screen, log
lines scroll above it, and every accepted share is logged at info (rejected ones always
are). Under systemd stderr is the journal, and the JSON log stays exactly as it was.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Final, TextIO, cast

import structlog

from stratum_client import eventloop
from stratum_client.config import DEFAULT_CONFIG_PATH, Config, load_config
from stratum_client.daemon.alerts import alert_services
from stratum_client.daemon.app import Daemon, Observer
from stratum_client.daemon.energy import energy_services
from stratum_client.daemon.telemetry import telemetry_services
from stratum_client.logsetup import LEVELS, configure_logging
from stratum_client.pool.types import ShareOutcome

__all__ = ["add_parser", "run", "share_logger"]

_CLEAR: Final = "\r\x1b[K"
"""Carriage return, then erase to the end of the line (ECMA-48 EL)."""

_log = structlog.get_logger(__name__)


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
    terminal = _Terminal(sys.stderr) if _watched(args, config) else None
    stream = None if terminal is None else cast("TextIO", terminal)

    def apply_logging(current: Config) -> None:
        configure_logging(
            args.log_level or current.daemon.log_level,
            args.log_format or current.daemon.log_format,
            current.daemon.log_levels,
            stream,
        )

    apply_logging(config)
    services = [*telemetry_services(config), *energy_services(config), *alert_services(config)]
    daemon = Daemon(
        config,
        config_path=args.config,
        on_reload=apply_logging,
        services=services,
        emit_status=None if terminal is None else terminal.show,
    )
    if terminal is not None:
        daemon.observe(share_logger(daemon))
    try:
        return eventloop.run(daemon.run(), config.daemon.event_loop)
    finally:
        if terminal is not None:
            terminal.end()


def _watched(args: argparse.Namespace, config: Config) -> bool:
    """A person at a terminal, not a journal: stderr is a TTY and JSON was not asked for."""
    return sys.stderr.isatty() and (args.log_format or config.daemon.log_format) != "json"


def share_logger(daemon: Daemon) -> Observer:
    """A daemon observer logging one info line per accepted share, naming its pool
    (the dispatcher logs every rejected share already)."""

    def log_accepted(event: object) -> None:
        if not (isinstance(event, ShareOutcome) and event.accepted):
            return
        share = event.share
        pools = daemon.config.pools
        extra: dict[str, object] = {"block": True} if share.block else {}
        if event.latency is not None:
            extra["latency_ms"] = round(event.latency * 1000, 1)
        _log.info(
            "share accepted",
            pool=pools[share.pool].name if share.pool < len(pools) else share.pool,
            chain=share.device,
            chip=share.chip,
            difficulty=float(f"{share.difficulty:.6g}"),
            **extra,
        )

    return log_accepted


class _Terminal(io.TextIOBase):
    """stderr on a terminal: log lines scroll above a status line redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._status = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        """A log line: clear the status line, print the text, draw the status line again."""
        self._stream.write(_CLEAR + text)
        if self._status and text.endswith("\n"):
            self._stream.write(self._status)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def show(self, line: str) -> None:
        """The daemon's status line, once a second."""
        self._status = line
        self._stream.write(_CLEAR + line)
        self._stream.flush()

    def end(self) -> None:
        """Leave the last status line on screen and the cursor on a fresh line."""
        if self._status:
            self._stream.write("\n")
            self._stream.flush()
        self._status = ""
