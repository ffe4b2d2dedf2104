"""Nonces handed straight from a driver's receive task to the feed (no loop step).

The runner attaches :meth:`ChainRunner._deliver` through ``AsicDriver.deliver_nonces``;
drivers that decline keep working through ``next_nonce``, a nonce queued before the sink
was attached is not lost, and a feed that raises still stops the chain with its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar, cast

import pytest
from live_helpers import wait_until

from stratum_client.asic.base import AsicDriver, ChainInfo, ChipCounters, FoundNonce
from stratum_client.config import DeviceConfig
from stratum_client.daemon.chain import ChainRunner, ChainState
from stratum_client.errors import DriverError
from stratum_client.work.job import Work


def _nonce(tag: int) -> FoundNonce:
    """A stand-in record: the runner only passes it on."""
    return cast(FoundNonce, ("nonce", tag))


class _Driver(AsicDriver):
    """A driver with no chips: the test pushes nonces through :meth:`found`."""

    model = "FAKE"
    direct = True
    instances: ClassVar[list[_Driver]] = []

    def __init__(self, spec: object) -> None:
        super().__init__(spec)  # type: ignore[arg-type]
        self.queue: asyncio.Queue[FoundNonce] = asyncio.Queue()
        self.sink: Callable[[FoundNonce], None] | None = None
        self.stopped = asyncio.Event()
        self.queue.put_nowait(_nonce(0))  # found before the runner attached its sink
        type(self).instances.append(self)

    def found(self, nonce: FoundNonce) -> None:
        if self.sink is not None:
            try:
                self.sink(nonce)
            except Exception:
                self.stopped.set()  # as the real driver's receive task would end
        else:
            self.queue.put_nowait(nonce)

    def deliver_nonces(self, sink: Callable[[FoundNonce], None] | None) -> bool:
        if not self.direct:
            return False
        self.sink = sink
        return True

    async def next_nonce(self) -> FoundNonce:
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        stopped = asyncio.ensure_future(self.stopped.wait())
        await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        raise DriverError("fake: driver stopped")

    async def start(self) -> ChainInfo:
        return ChainInfo("FAKE", 1, (0,), (0,))

    async def stop(self) -> None:
        self.stopped.set()

    async def set_frequency(self, mhz: float) -> float:
        return mhz

    async def set_version_mask(self, mask: int) -> None:
        pass

    async def send_work(self, work: Work) -> None:
        pass

    async def flush_work(self) -> None:
        pass

    @property
    def job_interval(self) -> float:
        return 10.0

    @property
    def counters(self) -> list[ChipCounters]:
        return [ChipCounters()]

    @property
    def frequency_mhz(self) -> float:
        return 100.0


class _Feed:
    def __init__(self, fail: bool = False) -> None:
        self.nonces: list[FoundNonce] = []
        self.fail = fail

    def next_work(self, chain: str, now: float) -> Work | None:
        return None

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> None:
        if self.fail:
            raise ValueError("feed bug")
        self.nonces.append(found)


def _runner(feed: _Feed, driver: type[_Driver]) -> ChainRunner:
    device = DeviceConfig(name="c", driver="fake", port="fake://", chips=1)
    return ChainRunner(device, feed, loader=lambda _name: driver)


@pytest.mark.parametrize("direct", [True, False])
async def test_nonces_reach_the_feed_with_or_without_direct_delivery(direct: bool) -> None:
    class Driver(_Driver):
        instances: ClassVar[list[_Driver]] = []

    Driver.direct = direct
    feed = _Feed()
    runner = _runner(feed, Driver)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(
            "first nonce", lambda: bool(Driver.instances) and runner.status.nonces == 1
        )
        driver = Driver.instances[0]
        assert (driver.sink is not None) is direct
        driver.found(_nonce(1))
        if direct:  # no loop step: the feed has it as soon as the driver hands it over
            assert feed.nonces == [_nonce(0), _nonce(1)]
        await wait_until("second nonce", lambda: len(feed.nonces) == 2)
        assert feed.nonces == [_nonce(0), _nonce(1)]
        assert runner.status.nonces == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert Driver.instances[0].sink is None  # detached when the driver's run ended


async def test_a_feed_error_on_a_direct_nonce_stops_the_chain_with_that_error() -> None:
    class Driver(_Driver):
        instances: ClassVar[list[_Driver]] = []

    feed = _Feed(fail=False)
    runner = _runner(feed, Driver)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until("first nonce", lambda: runner.status.nonces == 1)
        feed.fail = True
        Driver.instances[0].found(_nonce(1))
        await wait_until("chain failure", lambda: runner.status.failures == 1)
        assert runner.status.state is ChainState.RETRYING
        assert runner.status.last_error == "ValueError: feed bug"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
