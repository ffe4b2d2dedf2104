"""One chain of chips, run for the daemon: driver lifecycle, work pacing and the nonce loop.

The runner owns every call into its driver, so the driver never sees two tasks talking to
it at once: the daemon only raises flags (:meth:`ChainRunner.flush`,
:meth:`ChainRunner.set_version_mask`, :meth:`ChainRunner.wake`) and the runner's work
loop acts on them. Work is sent every :attr:`AsicDriver.job_interval` seconds, or at once
when woken, which is what puts a clean job on the wire without waiting out the interval.
Nonces go the other way without a loop step where the driver allows it
(:meth:`AsicDriver.deliver_nonces`): its receive task hands each one to the feed, so a
share is on its way to the pool before that task reads again.

A chain that cannot start (no such device, wrong chip count, driver not installed) is
retried with a doubling pause and never takes the daemon down with it: one bad USB stick
must not stop the others from mining.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from stratum_client.asic.base import AsicDriver, FoundNonce
from stratum_client.asic.registry import load_driver
from stratum_client.config import DeviceConfig
from stratum_client.errors import DriverError
from stratum_client.work.job import Work

__all__ = ["ChainRunner", "ChainState", "ChainStatus", "WorkFeed"]

RETRY_INITIAL: Final = 1.0
"""First pause before restarting a chain that failed."""
RETRY_MAX: Final = 60.0
"""Longest pause between restart attempts."""
HEALTHY_AFTER: Final = 60.0
"""A chain that ran this long before failing restarts with the initial pause again."""
IDLE_POLL: Final = 0.5
"""How often a chain without work asks again (new jobs also wake it at once)."""

_log = structlog.get_logger(__name__)


class WorkFeed(Protocol):
    """Where a runner gets work and hands nonces: the daemon, backed by the dispatcher."""

    def next_work(self, chain: str, now: float) -> Work | None: ...

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> None: ...


class ChainState(enum.StrEnum):
    """What a runner is doing; ``retrying`` means waiting out a pause after a failure."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    RETRYING = "retrying"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """A runner's state for the status line, APIs and the demo summary."""

    name: str
    driver: str
    port: str
    state: ChainState
    chips: int
    frequency_mhz: float | None
    starts: int
    failures: int
    last_error: str
    work_sent: int
    nonces: int
    paused_by: tuple[str, ...] = ()
    """Who holds the chain paused (``"energy"``, ``"command"``…); empty while mining."""


class ChainRunner:
    """Runs one ``[[devices]]`` chain until cancelled, restarting its driver on failure."""

    def __init__(
        self,
        device: DeviceConfig,
        feed: WorkFeed,
        *,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[str], type[AsicDriver]] = load_driver,
    ) -> None:
        self.device = device
        self.name = device.name
        self._feed = feed
        self._clock = clock
        self._loader = loader
        self._log = _log.bind(chain=device.name)
        self._wake = asyncio.Event()
        self._waiting = False
        """Whether the work loop waits for a wake-up (so no driver call is under way)."""
        self._sent_early = False
        """:meth:`flush` sent the clean job's work; the loop only re-arms its timer."""
        self._flush_pending = False
        self._paused = False
        self._holds: set[str] = set()
        self._frequency_request: float | None = None
        self._frequency_target: float | None = None
        """Last requested frequency, re-applied after a driver restart."""
        self._mask: int | None = None
        self._mask_dirty = False
        self._driver: AsicDriver | None = None
        self._state = ChainState.STARTING
        self._starts = 0
        self._failures = 0
        self._last_error = ""
        self._work_sent = 0
        self._nonces = 0
        self._feed_error: Exception | None = None
        """What the feed raised on a directly delivered nonce (it stopped the driver)."""
        self.first_attempt = asyncio.Event()
        """Set once the first start attempt has succeeded or failed (for READY=1)."""

    # -- requests from the daemon (synchronous: they only set flags) --------------------

    def wake(self) -> None:
        """New work may be available: ask the dispatcher now instead of at the next tick."""
        self._wake.set()

    def flush(self) -> None:
        """Clean job: make the chips drop their work and send fresh work at once.

        When the work loop is idle and the driver can write synchronously, the fresh work
        goes out here, in the step that brought the clean job, rather than a step later
        when the loop wakes (which then only re-arms its job timer).
        """
        self._flush_pending = True
        if self._send_clean_now():
            self._flush_pending = False
            self._sent_early = True
        self._wake.set()

    def _send_clean_now(self) -> bool:
        driver = self._driver
        if driver is None or not self._waiting or self._paused or self._holds:
            return False
        if self._mask_dirty or self._frequency_request is not None or not driver.can_send_now:
            return False  # the loop applies those first, in order
        try:
            work = self._feed.next_work(self.name, self._clock())
            if work is None or not driver.send_clean_work_now(work):
                return False
        except Exception:  # the loop meets it again on its own path, and fails the chain
            self._log.debug("clean work not sent at once", exc_info=True)
            return False
        self._work_sent += 1
        return True

    def set_version_mask(self, mask: int) -> None:
        """Program ``mask`` before the next work unit (and again after every restart)."""
        self._mask = mask
        self._mask_dirty = True
        self._wake.set()

    def pause_work(self) -> None:
        """Stop sending work (shutdown); nonces for work already sent still come in."""
        self._paused = True

    def hold(self, reason: str) -> None:
        """Pause mining on behalf of ``reason`` (energy policy, a command) until released.

        No new work is sent and the chips' queued work is flushed, so they go idle within
        one job; nonces for work already on the chips still arrive and are submitted.
        """
        if reason in self._holds:
            return
        self._holds.add(reason)
        if len(self._holds) == 1:
            self._flush_pending = True
            self._log.info("chain paused", by=reason)
        self._wake.set()

    def release(self, reason: str) -> None:
        """Drop ``reason``'s hold; the chain mines again once no hold is left."""
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds:
            self._log.info("chain resumed", by=reason)
        self._wake.set()

    @property
    def held(self) -> bool:
        """Whether some hold keeps the chain from mining."""
        return bool(self._holds)

    def request_frequency(self, mhz: float) -> None:
        """Ramp the chips to ``mhz`` before the next work unit (through the driver's ramp)."""
        self._frequency_request = self._frequency_target = mhz
        self._wake.set()

    @property
    def driver(self) -> AsicDriver | None:
        """The running driver, or None while starting or retrying."""
        return self._driver

    @property
    def status(self) -> ChainStatus:
        driver = self._driver
        state = self._state
        if state is ChainState.RUNNING and self._holds:
            state = ChainState.PAUSED
        return ChainStatus(
            name=self.name,
            driver=self.device.driver,
            port=self.device.port,
            state=state,
            chips=self.device.chips,
            frequency_mhz=driver.frequency_mhz if driver is not None else None,
            starts=self._starts,
            failures=self._failures,
            last_error=self._last_error,
            work_sent=self._work_sent,
            nonces=self._nonces,
            paused_by=tuple(sorted(self._holds)),
        )

    # -- the task -----------------------------------------------------------------------

    async def run(self) -> None:
        """Start the driver and mine; on failure pause (doubling) and start again."""
        pause = RETRY_INITIAL
        try:
            while True:
                started = self._clock()
                error = await self._attempt()
                self._failures += 1
                self._last_error = error
                if self._clock() - started >= HEALTHY_AFTER:
                    pause = RETRY_INITIAL
                self._state = ChainState.RETRYING
                self._log.error("chain stopped; will retry", error=error, retry_in=pause)
                self.first_attempt.set()
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
        finally:
            self._state = ChainState.STOPPED
            self._driver = None

    async def _attempt(self) -> str:
        """One driver lifetime; returns why it ended (it only ends by failing)."""
        self._state = ChainState.STARTING
        failure: BaseException | None = None
        try:
            driver = self._loader(self.device.driver)(self.device.to_spec())
            async with driver:
                await self._mine(driver)
        except* Exception as group:
            failure = _first_leaf(group)
        finally:
            self._driver = None
        if failure is None:  # pragma: no cover - _mine only ends by raising
            return "driver session ended"
        self._log.debug("chain failure detail", exc_info=failure)
        return f"{type(failure).__name__}: {failure}"

    async def _mine(self, driver: AsicDriver) -> None:
        self._driver = driver
        self._starts += 1
        self._state = ChainState.RUNNING
        self._mask_dirty = self._mask is not None
        self._flush_pending = self._sent_early = False
        self._frequency_request = self._frequency_target
        self._log.info(
            "chain running",
            driver=self.device.driver,
            port=self.device.port,
            chips=self.device.chips,
            frequency_mhz=driver.frequency_mhz,
        )
        self.first_attempt.set()
        self._feed_error = None
        driver.deliver_nonces(self._deliver)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._work_loop(driver), name=f"chain-{self.name}-work")
                tasks.create_task(self._nonce_loop(driver), name=f"chain-{self.name}-nonces")
        finally:
            driver.deliver_nonces(None)

    async def _work_loop(self, driver: AsicDriver) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            sent = self._sent_early or await self._send_once(driver)
            self._sent_early = False
            # A timer that sets the event costs less than wait_for's extra task per unit.
            pause = driver.job_interval if sent else IDLE_POLL
            timer = loop.call_later(pause, self._wake.set)
            self._waiting = True
            try:
                await self._wake.wait()
            finally:
                self._waiting = False
                timer.cancel()

    async def _send_once(self, driver: AsicDriver) -> bool:
        if self._mask_dirty and self._mask is not None:
            self._mask_dirty = False
            await driver.set_version_mask(self._mask)
        if self._frequency_request is not None:
            mhz, self._frequency_request = self._frequency_request, None
            reached = await driver.set_frequency(mhz)
            self._log.info("frequency set", requested_mhz=mhz, frequency_mhz=reached)
        if self._flush_pending:
            self._flush_pending = False
            await driver.flush_work()
        if self._paused or self._holds:
            return False
        work = self._feed.next_work(self.name, self._clock())
        if work is None:
            return False
        await driver.send_work(work)
        self._work_sent += 1
        return True

    def _deliver(self, found: FoundNonce) -> None:
        """A nonce handed over from the driver's receive task, without a loop step."""
        self._nonces += 1
        try:
            self._feed.on_nonce(self.name, found, self._clock())
        except Exception as exc:  # it stops the driver; the nonce loop reports this
            self._feed_error = exc
            raise

    async def _nonce_loop(self, driver: AsicDriver) -> None:
        """Nonces the driver queued (drivers that cannot deliver directly, or that found
        some before :meth:`_deliver` was attached); ends by raising when the driver stops."""
        while True:
            try:
                found = await driver.next_nonce()
            except DriverError:
                if self._feed_error is not None:
                    raise self._feed_error from None
                raise
            self._deliver(found)


def _first_leaf(error: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
