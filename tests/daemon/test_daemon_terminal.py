"""``stratum-client run`` in a terminal (a real pty) and under a journal (a pipe).

On a pty a person is watching: the status line is drawn in place at the bottom and each
accepted share is logged at info. On a pipe the log is the JSON it always was, with no
status line and no per-share accepted lines. The daemon mines on emulated chains against
a local pool in the test process, whose own verdicts are the truth for the counts shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stratum_client.testing.pool import LocalPool

if TYPE_CHECKING:
    from tests.daemon.conftest import Emulated

WAIT = 45.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STATUS = re.compile(
    r"pool pool0: (\d+) accepted, (\d+) rejected, \d+ stale, \d+ lost, [\d.]+ \S+/s"
)


def _env() -> dict[str, str]:
    drop = ("NOTIFY_SOCKET", "WATCHDOG_USEC")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"TERM": "xterm"}


async def _until(
    what: str, predicate: Callable[[], bool], process: asyncio.subprocess.Process
) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not predicate():
                if process.returncode is not None:
                    raise AssertionError(f"daemon exited while waiting for: {what}")
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for: {what}") from None


@contextlib.asynccontextmanager
async def _on_a_pty(config: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, bytearray]]:
    """The daemon with stdin, stdout and stderr on a pty; yields it and what it drew."""
    master, slave = os.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratum_client", "run", "--config", str(config),
        stdin=slave, stdout=slave, stderr=slave, env=_env(),
    )  # fmt: skip
    os.close(slave)
    screen = bytearray()
    loop = asyncio.get_running_loop()

    def read() -> None:
        try:
            screen.extend(os.read(master, 65536))
        except OSError:  # EIO: the child closed its side
            loop.remove_reader(master)

    loop.add_reader(master, read)
    try:
        yield process, screen
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        loop.remove_reader(master)
        os.close(master)


async def test_on_a_terminal_run_draws_a_status_line_and_logs_accepted_shares(
    emulated_chains: Emulated, local_pool: LocalPool, tmp_path: Path
) -> None:
    config = tmp_path / "stratum-client.toml"
    config.write_text(emulated_chains.config([local_pool]))
    async with _on_a_pty(config) as (process, screen):

        def text() -> str:
            return ANSI.sub("", screen.decode(errors="replace"))

        await _until("3 accepted shares", lambda: len(local_pool.accepted) >= 3, process)
        await _until("the status line", lambda: bool(STATUS.search(text())), process)
        await _until("3 share lines", lambda: text().count("share accepted") >= 3, process)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0
        await asyncio.sleep(0.1)  # the last bytes still in the pty
    drawn = screen.decode(errors="replace")
    plain = ANSI.sub("", drawn)
    # the status line is redrawn in place: carriage return, erase line, the line
    assert "\r\x1b[Kpool pool0: " in drawn
    counts = [(int(a), int(r)) for a, r in STATUS.findall(plain)]
    assert counts == sorted(counts)  # the counts only grow
    assert counts[-1][1] == 0
    # each accepted share is one log line naming its chain (the pool accepted them all)
    share_lines = [line for line in plain.splitlines() if "share accepted" in line]
    # (the drain answers every share in flight at SIGTERM, so none is missing)
    assert counts[-1][0] <= len(share_lines) == len(local_pool.accepted)
    assert all(re.search(r"\bchain=[ab]\b", line) for line in share_lines)
    assert all(re.search(r"\bpool=pool0\b", line) for line in share_lines)
    assert "{" not in "".join(share_lines)  # console rendering, not JSON
    assert "daemon stopped" in plain


async def test_under_a_journal_the_json_log_has_no_status_line_and_no_share_lines(
    emulated_chains: Emulated, local_pool: LocalPool, tmp_path: Path
) -> None:
    config = tmp_path / "stratum-client.toml"
    config.write_text(emulated_chains.config([local_pool]))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratum_client", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        await _until("3 accepted shares", lambda: len(local_pool.accepted) >= 3, process)
        await asyncio.sleep(1.5)  # more than one status interval
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert out == b""
    events = [json.loads(line)["event"] for line in err.splitlines()]
    assert "daemon ready" in events
    assert "share accepted" not in events
