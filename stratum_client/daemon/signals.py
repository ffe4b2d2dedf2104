"""Unix signals as event-loop callbacks, installed for the daemon's lifetime only.

``loop.add_signal_handler`` runs the callback inside the loop, so a handler may touch
daemon state without locks; removing the handlers on exit gives the process its default
behaviour back (a second Ctrl-C after the daemon stopped still interrupts).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator, Mapping

import structlog

__all__ = ["signal_handlers"]

_log = structlog.get_logger(__name__)


@contextlib.contextmanager
def signal_handlers(
    handlers: Mapping[signal.Signals, Callable[[], None]],
) -> Iterator[None]:
    """Route each signal to its callback inside ``with``; restore the defaults after."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    try:
        for signum, callback in handlers.items():
            try:
                loop.add_signal_handler(signum, _logged(signum, callback))
            except (RuntimeError, ValueError) as exc:  # not the main thread
                _log.warning("signal not handled", signal=signum.name, error=str(exc))
                continue
            installed.append(signum)
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _logged(signum: signal.Signals, callback: Callable[[], None]) -> Callable[[], None]:
    def handle() -> None:
        _log.info("signal received", signal=signum.name)
        callback()

    return handle
