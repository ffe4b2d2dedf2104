"""A clean job's first work is written in the loop step that brought it.

The chain runner's work loop normally sends work when it wakes, one loop step after the
wake-up. For a clean job (new block) that step is latency, so :meth:`ChainRunner.flush`
writes the fresh work itself when the loop is idle and the driver encodes synchronously.
The truth is the link's byte count, read before anything else could run, and the chip
emulator mining the work that went out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live_helpers import wait_until

from stratum_client.asic.base import FoundNonce
from stratum_client.config import parse_config
from stratum_client.daemon.chain import ChainRunner
from stratum_client.work import JobBuilder, Work
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import EmulatorServer
from tests.drivers.test_driver import slush_job

SCALE = 2.0**-34
JOB_FRAME = 88
"""A BM1366 job frame: 55 AA, header, length, 82 data bytes, CRC-16."""


@dataclass
class Feed:
    builder: JobBuilder
    units: list[Work] = field(default_factory=list)
    nonces: list[FoundNonce] = field(default_factory=list)

    def next_work(self, chain: str, now: float) -> Work:
        work = self.builder.build(len(self.units).to_bytes(4, "little"), midstates=0)
        self.units.append(work)
        return work

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> None:
        self.nonces.append(found)


@pytest.fixture
async def mining(tmp_path: Path) -> AsyncIterator[tuple[ChainRunner, Feed]]:
    link = tmp_path / "asic0"
    text = (
        f'[[pools]]\nurl = "stratum+tcp://127.0.0.1:1"\nuser = "w"\n'
        f'[[devices]]\nname = "c"\ndriver = "bm1366"\nport = "{link}"\nchips = 1\n'
        f"difficulty_scale = {SCALE}\noptions = {{ ramp_step_delay = 0 }}\n"
    )
    (device,) = parse_config(text).devices
    feed = Feed(slush_job(mask=0))
    chain = EmulatedChain("bm1366", 1, difficulty_scale=SCALE, seed=7)
    async with EmulatorServer(chain, link=str(link)):
        runner = ChainRunner(device, feed)
        task = asyncio.create_task(runner.run())
        try:
            await wait_until("work on the chips", lambda: len(feed.units) >= 1)
            yield runner, feed
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_flush_writes_the_fresh_work_before_returning(
    mining: tuple[ChainRunner, Feed],
) -> None:
    runner, feed = mining
    driver = runner.driver
    assert driver is not None
    await asyncio.sleep(0)  # the work loop is idle, waiting out its job interval
    before, units = driver.link.bytes_out, len(feed.units)
    runner.flush()
    assert driver.link.bytes_out - before == JOB_FRAME  # on the wire, no loop step taken
    assert len(feed.units) == units + 1
    fresh = feed.units[-1]
    await wait_until("a nonce for the fresh work", lambda: fresh in [n.work for n in feed.nonces])


async def test_flush_while_the_loop_is_busy_goes_the_usual_way(
    mining: tuple[ChainRunner, Feed],
) -> None:
    runner, feed = mining
    driver = runner.driver
    assert driver is not None
    runner.request_frequency(500)  # the loop must apply this first
    before = driver.link.bytes_out
    runner.flush()
    assert driver.link.bytes_out == before  # nothing written out of order
    units = len(feed.units)
    await wait_until("the loop's own send", lambda: len(feed.units) > units)
