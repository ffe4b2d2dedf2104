"""The event loop the daemon runs on: uvloop when it is installed, else asyncio's own.

Every byte between pool and chips goes through the loop's wake-ups, and a controller
with many chains spends most of its CPU there. uvloop (libuv; well kept, wheels for
x86-64 and 64-bit ARM) used about a quarter less CPU driving 256 emulated chains and kept
the nonce→submit p99 steadier in ``bench/daemon.py``; median latencies were the same
(docs/performance.md). It is optional: a controller without a wheel for its platform
runs the standard loop, and ``[daemon] event_loop = "asyncio"`` forces that.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from stratum_client.errors import ConfigError

__all__ = ["EVENT_LOOPS", "EventLoopChoice", "loop_factory", "run"]

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]
EVENT_LOOPS: tuple[EventLoopChoice, ...] = ("auto", "asyncio", "uvloop")

T = TypeVar("T")


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``choice``; None means asyncio's default loop."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as exc:
        if choice == "auto":
            return None
        raise ConfigError(
            "daemon.event_loop",
            f"'uvloop' is not installed ({exc}); install it or use 'auto' or 'asyncio'",
        ) from exc
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run`` on the chosen loop."""
    try:
        factory = loop_factory(choice)
    except BaseException:
        main.close()  # never awaited: close it so Python does not warn
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
