"""Readiness, status and watchdog notifications to systemd (``Type=notify`` units).

Written by hand on purpose: the protocol is one datagram of ``KEY=value`` lines sent to
the AF_UNIX socket named by ``$NOTIFY_SOCKET``, about thirty lines of code. The PyPI
packages for it are either unmaintained or bind libsystemd, which would be a C build
dependency on the Pi for something a ``sendto`` does.

Every call is a no-op outside systemd (no ``$NOTIFY_SOCKET``) and none ever raises: a
lost notification must not take the miner down, so failures are logged at debug level.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

__all__ = ["Notifier", "watchdog_interval"]

log = structlog.get_logger(__name__)


def _address(raw: str | None) -> str | None:
    """The socket address: a path, or ``@name`` for the abstract namespace."""
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    log.debug("sd_notify socket not supported", notify_socket=raw)
    return None


class Notifier:
    """Sends state changes to the service manager; construct once, call from anywhere."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        self._address = _address(source.get("NOTIFY_SOCKET"))
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True if it left this process."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(payload, self._address)
        except OSError as exc:
            log.debug("sd_notify send failed", error=str(exc), message=assignments[0])
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete: pools connected or chains initialised."""
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status``."""
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        """Keep-alive ping; send every :func:`watchdog_interval` seconds."""
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A SIGHUP reload started; follow with :meth:`ready` when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown started (draining shares); systemd stops expecting watchdog pings."""
        return self.send("STOPPING=1", *_status(status))

    def close(self) -> None:
        """Release the socket; later calls reopen it."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(text: str | None) -> tuple[str, ...]:
    # The message is newline-separated, so a status must stay on one line.
    return () if text is None else (f"STATUS={' '.join(text.splitlines())}",)


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``WatchdogSec=``), or None if not asked.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; any other
    process (a child that inherited the environment) must not ping.
    """
    source = os.environ if env is None else env
    try:
        usec = int(source.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watched = source.get("WATCHDOG_PID")
    if watched:
        try:
            if int(watched) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2_000_000 if usec > 0 else None
