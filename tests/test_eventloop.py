"""The daemon's event loop: uvloop when installed, asyncio's own when asked or missing."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import uvloop

from stratum_client import eventloop


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    assert eventloop.run(_loop_class(), "auto") is uvloop.Loop


def test_asyncio_forces_the_standard_loop() -> None:
    loop_class = eventloop.run(_loop_class(), "asyncio")
    assert loop_class is not uvloop.Loop
    assert issubclass(loop_class, asyncio.BaseEventLoop)


# A controller without a uvloop wheel: the import fails (``None`` in sys.modules makes
# ``import uvloop`` raise ImportError), in a fresh interpreter so this one keeps it.
_WITHOUT_UVLOOP = """
import asyncio, sys
sys.modules["uvloop"] = None
from stratum_client import eventloop
from stratum_client.errors import ConfigError

async def loop_class():
    return type(asyncio.get_running_loop()).__module__

print(eventloop.run(loop_class(), "auto"))
try:
    eventloop.run(loop_class(), "uvloop")
except ConfigError as exc:
    print(exc.field, "|", exc)
"""


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_config_error() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _WITHOUT_UVLOOP],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    fallback, error = result.stdout.splitlines()
    assert fallback.startswith("asyncio")
    assert error.startswith("daemon.event_loop | ")
    assert "'uvloop' is not installed" in error
    assert result.stderr == ""  # the coroutine that never ran was closed, no warning
