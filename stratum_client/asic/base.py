"""The driver base class every chip driver stands on, and the contract the daemon uses.

The daemon hands :class:`~stratum_client.work.job.Work` to :meth:`AsicDriver.send_work` at
the pace :attr:`AsicDriver.job_interval` asks for and consumes :class:`FoundNonce` records
from :meth:`AsicDriver.next_nonce` (or a sink given to :meth:`AsicDriver.deliver_nonces`).
Every nonce a driver reports has been hash-checked against the chain's ticket difficulty.

**The base owns** the serial link (:class:`~stratum_client.asic.transport.SerialLink`),
lifecycle and :class:`DriverState`, the receive task, the nonce queue and direct delivery,
per-chip counters, the latest work while the link is down, and unplug recovery (reopen,
bring up again with a :class:`~stratum_client.backoff.Backoff` between failures, resend).

**A driver implements the hooks** :meth:`_bring_up` (enumerate, init, ramp a just-opened
link), :meth:`_send_job` (encode and write one work unit) and :meth:`_on_bytes` (parse
replies; report with :meth:`_accept` / :meth:`_reject`); optionally :meth:`_read_timeout`,
:meth:`_on_flush`, :meth:`_on_link_down`, :meth:`_reset`, :meth:`_new_link`; and the chip
controls :meth:`set_frequency`, :meth:`set_version_mask`, :attr:`job_interval`,
:attr:`frequency_mhz`. **Class-level facts**: :attr:`model`, :attr:`facts`
(:class:`ChipFacts`), :attr:`midstates`, :meth:`detect`, :meth:`reachable_mhz`.

These names are the stable public surface that boards and plug-ins build on. A driver
doing I/O another way may override the public methods (``start``, ``send_work``,
``next_nonce`` …) instead and use none of the hooks.

Lifecycle (an async context manager, reusable but not re-entrant)::

    async with driver:                 # start(): open link, enumerate, init, ramp
        await driver.send_work(work)
        found = await driver.next_nonce()
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar, Self

import structlog

from stratum_client.asic.delivery import NonceDelivery
from stratum_client.asic.detect import ProbeResult
from stratum_client.asic.facts import ChipFacts
from stratum_client.asic.records import ChainInfo, ChipCounters, DeviceSpec, DriverState, FoundNonce
from stratum_client.asic.transport import INITIAL_BAUDRATE, SerialLink
from stratum_client.backoff import Backoff
from stratum_client.errors import DriverError, SerialLinkLostError, WorkError
from stratum_client.work.job import Work

__all__ = [
    "AsicDriver",
    "ChainInfo",
    "ChipCounters",
    "ChipFacts",
    "DeviceSpec",
    "DriverState",
    "FoundNonce",
]

_log = structlog.get_logger("stratum_client.asic.driver")


class AsicDriver(abc.ABC):
    """A chain of chips behind one serial link.

    Subclasses are registered under the ``stratum_client.drivers`` entry-point group and
    constructed with the :class:`DeviceSpec` of one ``[[devices]]`` table.
    """

    model: ClassVar[str]
    """Chip model name, e.g. ``"BM1366"`` (defaults to ``facts.model``)."""
    facts: ClassVar[ChipFacts | None] = None
    """The chip's published figures; ``None``: no cores or power model are known."""
    midstates: ClassVar[int] = 0
    """Midstates each work unit needs: 0 for full-header chips, 1 or 4 otherwise."""
    nonce_queue_size: ClassVar[int] = 4096
    """Verified nonces buffered for :meth:`next_nonce`; beyond it the oldest are dropped."""
    idle_read: ClassVar[float] = 0.5
    """Default :meth:`_read_timeout`: how long a read waits before ``_on_bytes(b"")``."""
    reopen_budget: ClassVar[float] = 30.0
    """Seconds one reopen of a vanished link keeps trying before bring-up is retried."""
    link_backoff: ClassVar[tuple[float, float]] = (0.05, 0.25)
    """First and longest pause between attempts to reopen the port."""
    bring_up_backoff: ClassVar[tuple[float, float]] = (1.0, 4.0)
    """First and longest pause after a bring-up failed on a present device."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "model" not in cls.__dict__ and cls.facts is not None:
            cls.model = cls.facts.model

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self._log = _log.bind(port=spec.port, model=getattr(self, "model", "?"))
        self._link: SerialLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = DriverState.STOPPED
        self._chain: ChainInfo | None = None
        self._delivery = NonceDelivery(self.nonce_queue_size)
        self._reset_base()

    def _reset_base(self) -> None:
        self._counters = [ChipCounters() for _ in range(self.spec.chips)]
        self._stale = self._reconnects = 0
        self._delivery.clear()
        self._pending: Work | None = None
        self._lost = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.port} {self._state}>"

    # -- class-level facts ----------------------------------------------------------------

    @classmethod
    async def detect(cls, port: str, *, timeout: float = 1.0) -> ProbeResult | None:  # noqa: ASYNC109 - a reply deadline
        """Ask ``port`` which of this driver's chips answer; ``None``: cannot tell.

        Drivers sharing one implementation (subclasses of one family) are asked once.
        """
        return None

    @classmethod
    def reachable_mhz(cls, mhz: float) -> float | None:
        """The frequency the chip would really run at when asked for ``mhz``.

        ``None`` means the driver has no frequency control; an impossible request raises
        :class:`~stratum_client.errors.DriverError`.
        """
        return None

    # -- hooks ----------------------------------------------------------------------------

    async def _bring_up(self) -> ChainInfo:
        """Enumerate, initialise and ramp the chain on a link just opened at power-up rate."""
        raise NotImplementedError

    async def _send_job(self, work: Work) -> None:
        """Encode ``work`` and write it to :attr:`link`."""
        raise NotImplementedError

    def _encode_job(self, work: Work) -> bytes | None:
        """Optional: ``work``'s frame, recorded as sent, so :meth:`send_clean_work_now` can
        write it from the caller's loop step; None (the default): only :meth:`_send_job`."""
        return None

    def _on_bytes(self, data: bytes) -> None:
        """Handle received bytes; ``b""`` means :meth:`_read_timeout` passed in silence."""
        raise NotImplementedError

    def _read_timeout(self) -> float:
        """How long the receive task waits for bytes before calling ``_on_bytes(b"")``."""
        return self.idle_read

    def _on_flush(self) -> None:  # noqa: B027 - an optional hook
        """Forget all work sent so far (clean_jobs); late nonces for it become stale."""

    def _on_link_down(self, error: DriverError) -> None:  # noqa: B027 - an optional hook
        """The link vanished or the driver stops: fail in-flight requests with ``error``."""

    def _reset(self) -> None:  # noqa: B027 - an optional hook
        """Clear per-run state at :meth:`start` (counters and queue are reset by the base)."""

    def _on_running(self) -> None:  # noqa: B027 - an optional hook
        """The chain is up (first start or after a reconnect) and work can flow now."""

    def _new_link(self) -> SerialLink:
        """The link to :attr:`spec`'s port, opened by :meth:`start`."""
        first, longest = self.link_backoff
        return SerialLink(self.spec.port, reconnect=Backoff(first, longest, jitter="none"))

    # -- helpers for drivers --------------------------------------------------------------

    @property
    def link(self) -> SerialLink:
        """The open link; :class:`SerialLinkLostError` when the driver is not started."""
        if self._link is None:
            raise SerialLinkLostError(f"{self.spec.port}: driver is not started")
        return self._link

    def _accept(self, found: FoundNonce, *, stale: bool = False) -> None:
        """Count a verified nonce on its chip and deliver it (``stale``: for flushed work)."""
        chip = self._counters[found.chip]
        chip.nonces += 1
        chip.last_nonce_at = found.received_at
        if stale:
            self._stale += 1
        self._delivery.put(found)

    def _reject(self, chip: int, *, duplicate: bool = False) -> None:
        """Count a nonce that failed verification (or repeated one already delivered)."""
        if duplicate:
            self._counters[chip].duplicates += 1
        else:
            self._counters[chip].hw_errors += 1

    def _note_lost(self, generation: int) -> None:
        """A write outside the receive task failed: hand recovery to the receive task."""
        link = self._link
        if link is None or link.generation != generation:
            return  # that link is already being (or has been) replaced
        self._lost = True
        if self._state is DriverState.RUNNING:
            self._state = DriverState.RECONNECTING

    # -- read-only state ----------------------------------------------------------------

    @property
    def state(self) -> DriverState:
        return self._state

    @property
    def chain(self) -> ChainInfo | None:
        """What the last bring-up found."""
        return self._chain

    @property
    def counters(self) -> list[ChipCounters]:
        """One counter set per chip, in chain order."""
        return self._counters

    @property
    def reconnects(self) -> int:
        """Times the chain was brought back after the link vanished."""
        return self._reconnects

    @property
    def stale_nonces(self) -> int:
        """Of the passed nonces, those for flushed work (the daemon judges them)."""
        return self._stale

    @property
    def dropped_nonces(self) -> int:
        """Verified nonces discarded because nobody collected them in time."""
        return self._delivery.dropped

    @property
    def baudrate(self) -> int:
        """The host UART's current rate."""
        return self._link.baudrate if self._link is not None else INITIAL_BAUDRATE

    @property
    @abc.abstractmethod
    def job_interval(self) -> float:
        """Seconds between fresh work units that keep every chip busy."""

    @property
    @abc.abstractmethod
    def frequency_mhz(self) -> float:
        """The frequency the chain currently runs at."""

    @abc.abstractmethod
    async def set_frequency(self, mhz: float) -> float:
        """Ramp every chip to ``mhz``; returns the frequency actually reached."""

    @abc.abstractmethod
    async def set_version_mask(self, mask: int) -> None:
        """Restrict chip-side version rolling to ``mask`` (0 disables it)."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ChainInfo:
        """Open the link and bring the chain up; then receive until :meth:`stop`."""
        if self._state is not DriverState.STOPPED:
            raise DriverError(f"{self.spec.port}: driver already started")
        self._state = DriverState.STARTING
        self._reset_base()
        self._reset()
        self._link = self._new_link()
        try:
            await self._link.open()
            chain = self._chain = await self._bring_up()
        except BaseException:
            await self._shutdown()
            raise
        self._state = DriverState.RUNNING
        self._task = asyncio.create_task(self._run(), name=f"driver-rx {self.spec.port}")
        self._task.add_done_callback(self._delivery.wake)
        self._log.info("chain running", chips=chain.chip_count, mhz=self.frequency_mhz)
        self._on_running()
        await self._send_pending()
        return chain

    async def stop(self) -> None:
        """Stop the receive task and release the port (the chips keep their config)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                self._log.error("receive task had failed", error=repr(task.exception()))
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._on_link_down(DriverError(f"{self.spec.port}: driver stopped"))
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self._state = DriverState.STOPPED

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- receiving and recovery -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._receive()
            except SerialLinkLostError:
                await self._recover()

    async def _receive(self) -> None:
        """Replies are handled as the transport reads them (no loop step per reply); this
        task only tells :meth:`_on_bytes` of silences and notices the link going."""
        link = self.link
        link.listen(self._on_bytes)
        try:
            while not self._lost:
                if not await link.wait_data(self._read_timeout()):
                    self._on_bytes(b"")
        finally:
            if link.is_open:
                link.listen(None)
        raise SerialLinkLostError(f"{self.spec.port}: a write failed")

    async def _recover(self) -> None:
        """Wait for the device, bring the chain up again and resend the latest work."""
        self._state = DriverState.RECONNECTING
        self._log.warning("chain link lost; reconnecting")
        self._on_link_down(SerialLinkLostError(f"{self.spec.port}: link lost"))
        link, failures = self.link, 0
        backoff = Backoff(*self.bring_up_backoff, jitter="none")
        while True:
            try:
                await link.reopen(timeout=self.reopen_budget)
                self._lost = False
                self._chain = await self._bring_up()
                break
            except SerialLinkLostError as exc:
                self._log.debug("device not back yet", reason=str(exc))
            except DriverError as exc:
                failures += 1
                report = self._log.warning if failures == 1 else self._log.debug
                report("bring-up after reconnect failed; retrying", error=str(exc))
                await link.close()
                await asyncio.sleep(backoff.next())
        self._reconnects += 1
        self._state = DriverState.RUNNING
        self._log.info("chain resumed", reconnects=self._reconnects)
        self._on_running()
        await self._send_pending()

    # -- work and nonces ------------------------------------------------------------------

    async def send_work(self, work: Work) -> None:
        """Send ``work`` to the chain; while reconnecting keep only the latest."""
        if self._state is DriverState.STOPPED:
            raise DriverError(f"{self.spec.port}: driver is not started")
        if self._state is not DriverState.RUNNING:
            self._pending = work
            return
        await self._transmit(work)

    async def _transmit(self, work: Work) -> None:
        generation = self.link.generation
        try:
            await self._send_job(work)
        except SerialLinkLostError:
            self._pending = work
            self._note_lost(generation)

    async def _send_pending(self) -> None:
        work, self._pending = self._pending, None
        if work is None:
            return
        try:
            await self._transmit(work)
        except WorkError as exc:
            self._log.error("queued work cannot be encoded; dropped", error=str(exc))

    async def flush_work(self) -> None:
        """Forget all work (clean_jobs): nonces still arriving for it are counted stale."""
        self._forget_work()

    def _forget_work(self) -> None:
        self._on_flush()
        self._pending = None

    @property
    def can_send_now(self) -> bool:
        """Whether :meth:`send_clean_work_now` would write at once (running, the link idle)."""
        link = self._link
        return (
            self._state is DriverState.RUNNING
            and link is not None
            and link.can_write_now
            and type(self)._encode_job is not AsicDriver._encode_job
        )

    def send_clean_work_now(self, work: Work) -> bool:
        """Forget all work and write ``work`` without a loop step: a clean job on the wire in
        the step that brought it. False (nothing done) when :attr:`can_send_now` is not so."""
        frame = self._encode_job(work) if self.can_send_now else None
        if frame is None:
            return False
        self._forget_work()
        link = self.link
        link.write_now(frame)
        if not link.is_open:  # the write found the link gone: resend after the recovery
            self._pending = work
        return True

    def deliver_nonces(self, sink: Callable[[FoundNonce], None] | None) -> bool:
        """Hand each later nonce straight to ``sink`` from the receive task (no loop step).

        :meth:`next_nonce` then only yields what was queued before, and still raises once
        the driver stops, so callers keep waiting on it to notice a failure. An exception
        from ``sink`` ends the receive task. ``None`` goes back to queueing. Returns True;
        a bare implementation of the contract may return False to decline.
        """
        self._delivery.sink = sink
        return True

    async def next_nonce(self) -> FoundNonce:
        """The next verified nonce; DriverError once the driver has stopped."""
        return await self._delivery.next(self._task, self.spec.port)
