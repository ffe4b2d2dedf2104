"""The driver for BM1366/BM1368/BM1370/BM1397 chains: one class, chip facts from the codec.

Everything that differs between models (frame layouts, init sequence, job ids, reply
decoding, PLL dividers, baud registers) lives in :mod:`stratum_client_bm13xx`'s codec and model
records; this module only does the I/O around them: bring-up, the work slots, the
receive task and recovery from a vanished link.

**Every nonce is verified here.** CRC-5 lets 1 in 32 corrupted replies through and an
emulator may report garbage on purpose, so each nonce is mapped to the work its job id
names, the header is rebuilt with the reported version, hashed and compared against the
ticket the chips were given (see :class:`NonceChecker`). Only nonces that pass reach
:meth:`Bm13xxDriver.next_nonce`, or the sink given to :meth:`Bm13xxDriver.deliver_nonces`.

**Version rolling starts disabled.** Full-header chips are programmed with a zero version
mask until the daemon calls :meth:`Bm13xxDriver.set_version_mask` with what the pool
granted, so a pool without version rolling never receives rolled versions (the reference
firmware programs ``0x1fffe000`` before the pool has answered).
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar, Final

import structlog
from serial.tools import list_ports

from stratum_client.asic.base import AsicDriver, ChainInfo, ChipCounters, DeviceSpec, FoundNonce
from stratum_client.asic.transport import INITIAL_BAUDRATE, ReconnectPolicy, SerialLink
from stratum_client.errors import (
    ChipCountError,
    DriverError,
    DriverTimeoutError,
    SerialLinkLostError,
    WorkError,
)
from stratum_client.work.job import DEFAULT_VERSION_MASK, Work
from stratum_client_bm13xx.probe import collect_chip_ids

from . import frames, pacing, registers
from .chips import ChipModel, model_by_chip_id, model_by_name
from .codec import ChipCodec, NonceReply, RegisterReply, Reply, codec_for
from .fastbaud import (
    Bridge,
    UnsupportedBaudError,
    bridge_for,
    bridge_named,
    plan_baud,
    silent_after_switch,
    usb_id_of,
)
from .nonces import NonceChecker, Outcome, ticket_target
from .options import DriverOptions, parse_options
from .pll import pll_for_frequency, ramp_plan
from .registers import CountChips, Delay, Reg, Send, SetHostBaud, Step
from .rx import ReplyParser

__all__ = [
    "Bm13xxDriver",
    "DriverOptions",
    "DriverState",
    "NonceChecker",
    "Outcome",
    "parse_options",
    "ticket_target",
]

_log = structlog.get_logger(__name__)

_CODEC_RAMP_START_MHZ: Final = 50.0
"""The start frequency the codec's init sequence ramps from (located and replaced)."""
_REFERENCE_RAMP_PAUSE: Final = 0.1
"""Pause per ramp step the reference firmware uses; BM1397 sub-step gaps scale with it."""
_FLUSH_GAP: Final = 0.02
"""Idle time after which frames held back by the parser's overlap rule are decided."""
_IDLE_READ: Final = 0.5
_REOPEN_BUDGET: Final = 30.0
_RETRY_PAUSE: Final = 1.0
"""Pause before re-trying a bring-up that failed on a present device (wrong chip count)."""


class DriverState(enum.StrEnum):
    """Where a driver is in its life; ``reconnecting`` means the link vanished."""

    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


def _find(steps: list[Step], part: list[Step]) -> int:
    """Index where ``part`` occurs in ``steps`` as a contiguous run, or −1."""
    size = len(part)
    for index in range(len(steps) - size + 1):
        if steps[index] == part[0] and steps[index : index + size] == part:
            return index
    return -1


async def _pause(seconds: float) -> None:
    await asyncio.sleep(max(seconds, 0.0))


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------


class Bm13xxDriver(AsicDriver):
    """One chain of BM13xx chips of a single model behind one serial link.

    Subclasses only set :attr:`model` (and ``midstates`` for midstate chips). The driver
    owns one receive task from :meth:`start` to :meth:`stop`; when the link vanishes
    that task waits for the device, brings the chain up again and resumes, while
    :meth:`send_work` keeps only the latest work and never raises.
    """

    nonce_queue_size: ClassVar[int] = 4096
    """Verified nonces buffered for :meth:`next_nonce`; beyond it the oldest are dropped."""

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self.chip_model = self._resolve_model()
        self.options = parse_options(spec.port, spec.options)
        self._check_spec(spec)
        try:
            self.codec: ChipCodec = codec_for(self.chip_model, spec.chips)
            self._target_mhz = float(spec.frequency_mhz or self.chip_model.default_mhz)
            self._mhz = pll_for_frequency(self.chip_model, self._target_mhz).actual_mhz
        except ValueError as exc:
            raise DriverError(f"{spec.port}: {exc}") from exc
        self._plan_baud(bridge_named(self.options.bridge))
        self.ticket_difficulty = float(registers.ticket_difficulty(spec.ticket_difficulty))
        """The power of two the chips were given (asking for 300 gives 256)."""
        target = ticket_target(self.ticket_difficulty, spec.difficulty_scale)
        self._checker = NonceChecker(self.chip_model, target)
        self._log = _log.bind(port=spec.port, model=self.chip_model.name)
        self._link: SerialLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = DriverState.STOPPED
        self._freq_lock = asyncio.Lock()
        self._sink: Callable[[FoundNonce], None] | None = None
        self._version_mask = 0
        self._chain: ChainInfo | None = None
        self._reset_run_state()

    @classmethod
    def _resolve_model(cls) -> ChipModel:
        name = getattr(cls, "model", None)
        if not isinstance(name, str):
            raise DriverError(f"{cls.__name__} does not name a chip model")
        try:
            return model_by_name(name)
        except ValueError as exc:
            raise DriverError(str(exc)) from exc

    @staticmethod
    def _check_spec(spec: DeviceSpec) -> None:
        scale, ticket = spec.difficulty_scale, spec.ticket_difficulty
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(ticket) and ticket > 0):
            raise DriverError(
                f"{spec.port}: ticket difficulty {ticket!r} and difficulty scale {scale!r} "
                "must be finite and positive"
            )

    def _reset_run_state(self) -> None:
        self._counters = [ChipCounters() for _ in range(self.spec.chips)]
        self._parser: ReplyParser[Reply] = self.codec.parser()
        self._crc_base = 0
        self._stale = self._unknown = self._dropped = self._reconnects = 0
        self._nonces: deque[FoundNonce] = deque()
        self._nonce_waiter: asyncio.Future[None] | None = None
        self._waiters: dict[tuple[int, int], asyncio.Future[int]] = {}
        self._next_job_id = self.chip_model.job_ids()[0]
        self._pending: Work | None = None
        self._lost = False
        self._warned_chips: set[int] = set()
        self._checker.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.port} {self._state}>"

    # -- read-only state ----------------------------------------------------------------

    @property
    def state(self) -> DriverState:
        return self._state

    @property
    def reconnects(self) -> int:
        """Times the chain was brought back after the link vanished."""
        return self._reconnects

    @property
    def crc_errors(self) -> int:
        """Reply candidates rejected by CRC-5 (line noise, torn frames)."""
        return self._crc_base + self._parser.crc_errors

    @property
    def stale_nonces(self) -> int:
        """Of the passed nonces, those for flushed work or with a version outside the job's
        mask. They are passed on all the same: the daemon decides whether they are still
        shares (and counts them lost with a reason if not)."""
        return self._stale

    @property
    def unknown_job_nonces(self) -> int:
        """Nonce replies naming a job id that holds no work (also counted as HW errors)."""
        return self._unknown

    @property
    def dropped_nonces(self) -> int:
        """Verified nonces discarded because nobody collected them in time."""
        return self._dropped

    @property
    def effective_ticket_difficulty(self) -> float:
        """Programmed ticket × ``difficulty_scale``: what every passed nonce meets."""
        return self.ticket_difficulty * self.spec.difficulty_scale

    @property
    def version_mask(self) -> int:
        """The rolling mask in force (full-header chips: what register 0xA4 holds)."""
        return self._version_mask

    @property
    def chain(self) -> ChainInfo | None:
        """What the last enumeration found."""
        return self._chain

    @property
    def baudrate(self) -> int:
        """The host UART's current rate."""
        return self._link.baudrate if self._link is not None else INITIAL_BAUDRATE

    @property
    def target_baudrate(self) -> int:
        """The rate chain and host switch to at the end of bring-up."""
        return self._fast_baud

    @property
    def job_interval(self) -> float:
        model, chips, mask = self.chip_model, self.spec.chips, self._version_mask
        return pacing.job_interval_ms(model, chips, self._mhz, mask, self._fast_baud) / 1000.0

    @property
    def counters(self) -> list[ChipCounters]:
        return self._counters

    @property
    def frequency_mhz(self) -> float:
        return self._mhz

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ChainInfo:
        """Open the link, enumerate, initialise, ramp and switch baud; start receiving."""
        if self._state is not DriverState.STOPPED:
            raise DriverError(f"{self.spec.port}: driver already started")
        self._state = DriverState.STARTING
        self._reset_run_state()
        self._link = SerialLink(
            self.spec.port, reconnect=ReconnectPolicy(first_delay=0.05, max_delay=0.25)
        )
        try:
            await self._link.open()
            chain = await self._bring_up()
        except BaseException:
            await self._shutdown()
            raise
        self._state = DriverState.RUNNING
        self._task = asyncio.create_task(self._run(), name=f"bm13xx-rx {self.spec.port}")
        self._task.add_done_callback(self._wake_nonce_waiter)
        self._log.info("chain running", chips=chain.chip_count, mhz=self._mhz)
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
        self._fail_waiters(DriverError(f"{self.spec.port}: driver stopped"))
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self._state = DriverState.STOPPED

    def _require_link(self) -> SerialLink:
        if self._link is None:
            raise SerialLinkLostError(f"{self.spec.port}: driver is not started")
        return self._link

    # -- bring-up -----------------------------------------------------------------------

    async def _bring_up(self) -> ChainInfo:
        """Enumerate, run the model's init, ramp and switch baud; the link is at 115 200."""
        self._lost = False
        self._reset_parser()
        await self._plan_baud_for_port()
        body, tail = self._init_plan()
        self._mhz = self.options.initial_mhz
        await self._run_steps(body)
        await self._ramp(self.options.initial_mhz, self._target_mhz)
        await self._run_steps(tail)
        if self._baud_frame is not None:
            await self._require_link().write(self._baud_frame)
            await self._set_host_baud(self._fast_baud)
            await self._check_chips_answer()
        self._checker.clear()
        self._checker.version_mask = self._version_mask
        if self._chain is None:
            raise DriverError(f"{self.chip_model.name}: the codec's init never enumerates")
        return self._chain

    def _init_plan(self) -> tuple[list[Step], list[Step]]:
        """The codec's init sequence split around its frequency ramp and baud switch.

        Both are replaced: the ramp honours ``ramp_step_delay`` and ``initial_mhz``, and
        the baud switch honours the ``baud`` option.
        """
        model = self.chip_model
        steps = self.codec.init_steps(
            mhz=self._target_mhz,
            ticket_diff=self.spec.ticket_difficulty,
            version_mask=self._version_mask if model.full_header else DEFAULT_VERSION_MASK,
        )
        ramp = registers.ramp_steps(model, _CODEC_RAMP_START_MHZ, self._target_mhz)
        baud = registers.max_baud_steps(model)
        start = _find(steps, ramp)
        tail = steps[start + len(ramp) :] if start >= 0 else []
        if start < 0 or tail[-len(baud) :] != baud:
            raise DriverError(f"{model.name}: the codec's init sequence has an unknown layout")
        return steps[:start], tail[: -len(baud)]

    async def _run_steps(
        self, steps: list[Step], delay_scale: float = 1.0, guard: int | None = None
    ) -> None:
        """Replay init steps; with ``guard`` (a link generation) abort if the chain restarted."""
        for step in steps:
            match step:
                case Send(frame=frame):
                    link = self._require_link()
                    if guard is not None and (
                        link.generation != guard or self._state is not DriverState.RUNNING
                    ):
                        raise SerialLinkLostError(f"{self.spec.port}: chain restarted")
                    await link.write(frame)
                case Delay(ms=ms):
                    await _pause(ms / 1000.0 * delay_scale)
                case CountChips():
                    await self._enumerate(step)
                case SetHostBaud(baud=baud):
                    await self._set_host_baud(baud)

    async def _enumerate(self, step: CountChips) -> None:
        replies = await collect_chip_ids(
            self._require_link(),
            first_timeout=step.timeout_ms / 1000.0,
            quiet=self.options.enumerate_quiet,
        )
        model = self.chip_model
        foreign = sorted({r.chip_id for r in replies if r.chip_id != model.chip_id})
        if foreign:
            names = ", ".join(_model_label(chip_id) for chip_id in foreign)
            raise DriverError(
                f"{self.spec.port}: found {names} chip(s), but this driver is for the "
                f"{model.name} ({model.chip_id:#06x})"
            )
        if len(replies) != self.spec.chips:
            raise ChipCountError(self.spec.chips, len(replies), self.spec.port)
        ids = tuple(r.chip_id for r in replies)
        self._chain = ChainInfo(model.name, len(ids), ids, self.codec.addresses)
        self._log.debug("chain enumerated", chips=len(ids))

    async def _ramp(self, start_mhz: float, target_mhz: float, guard: int | None = None) -> None:
        """Walk the PLL in 6.25 MHz steps; BM1397 sub-step gaps shrink with the step delay."""
        scale = min(1.0, self.options.ramp_step_delay / _REFERENCE_RAMP_PAUSE)
        for mhz in ramp_plan(start_mhz, target_mhz):
            steps = registers.frequency_steps(self.chip_model, mhz)
            await self._run_steps(steps, delay_scale=scale, guard=guard)
            self._mhz = pll_for_frequency(self.chip_model, mhz).actual_mhz
            await _pause(self.options.ramp_step_delay)

    def _plan_baud(self, bridge: Bridge | None) -> None:
        """Choose the fast rate for the chips and the host from the bridge in front."""
        self._baud = plan_baud(self.chip_model, self.spec.port, self.options.baud, bridge)
        self._baud_frame, self._fast_baud = self._baud.frame, self._baud.host_baud

    async def _plan_baud_for_port(self) -> None:
        """Plan the fast baud for the bridge in front of the port (its USB id, or the option)."""
        usb_id = await asyncio.to_thread(_usb_id, self.spec.port)
        self._plan_baud(bridge_for(self.options.bridge, usb_id))
        bridge = self._baud.bridge.name if self._baud.bridge else "native UART"
        self._log.info("fast baud", bridge=bridge, chips=self._baud.chip_baud, host=self._fast_baud)

    async def _check_chips_answer(self) -> None:
        """Read the chip ids at the new rate: a bridge that cannot carry it hears nothing."""
        link = self._require_link()
        await link.write(frames.read_register(Reg.CHIP_ID))
        replies = await collect_chip_ids(link, quiet=self.options.enumerate_quiet)
        if len(replies) < self.spec.chips:
            message = silent_after_switch(self.spec.port, self._baud, len(replies), self.spec.chips)
            raise UnsupportedBaudError(message)

    async def _set_host_baud(self, baud: int) -> None:
        await self._require_link().set_baudrate(baud)
        self._reset_parser()  # bytes straddling the switch are garbage

    def _reset_parser(self) -> None:
        self._crc_base += self._parser.crc_errors
        self._parser = self.codec.parser()

    # -- receiving and recovery -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._receive()
            except SerialLinkLostError:
                await self._recover()

    async def _receive(self) -> None:
        link = self._require_link()
        while not self._lost:
            parser = self._parser
            data = await link.read(4096, timeout=_FLUSH_GAP if parser.pending else _IDLE_READ)
            for reply in parser.feed(data) if data else parser.flush():
                if isinstance(reply, NonceReply):
                    self._on_nonce(reply)
                else:
                    self._on_register(reply)
        raise SerialLinkLostError(f"{self.spec.port}: a write failed")

    async def _recover(self) -> None:
        """Wait for the device, bring the chain up again and resend the latest work."""
        self._state = DriverState.RECONNECTING
        self._log.warning("chain link lost; reconnecting")
        self._fail_waiters(SerialLinkLostError(f"{self.spec.port}: link lost"))
        self._checker.clear()
        link, failures = self._require_link(), 0
        while True:
            try:
                await link.reopen(timeout=_REOPEN_BUDGET)
                await self._bring_up()
                break
            except SerialLinkLostError as exc:
                self._log.debug("device not back yet", reason=str(exc))
            except DriverError as exc:
                failures += 1
                report = self._log.warning if failures == 1 else self._log.debug
                report("bring-up after reconnect failed; retrying", error=str(exc))
                await link.close()
                await asyncio.sleep(_RETRY_PAUSE)
        self._reconnects += 1
        self._state = DriverState.RUNNING
        self._log.info("chain resumed", reconnects=self._reconnects)
        await self._send_pending()

    def _note_lost(self, generation: int) -> None:
        """A public method's write failed: hand recovery to the receive task."""
        link = self._link
        if link is None or link.generation != generation:
            return  # that link is already being (or has been) replaced
        self._lost = True
        if self._state is DriverState.RUNNING:
            self._state = DriverState.RECONNECTING

    def _on_nonce(self, reply: NonceReply) -> None:
        now = time.monotonic()
        outcome, found = self._checker.check(reply, now)
        chip = self._counters[reply.chip_index]
        match outcome:
            case Outcome.ACCEPTED | Outcome.STALE if found is not None:
                chip.nonces += 1
                chip.last_nonce_at = now
                if outcome is Outcome.STALE:
                    self._stale += 1
                self._enqueue(found)
            case Outcome.DUPLICATE:
                chip.duplicates += 1
            case Outcome.UNKNOWN_JOB:
                self._unknown += 1
                chip.hw_errors += 1
                self._report_hw_error(reply, outcome)
            case _:
                chip.hw_errors += 1
                self._report_hw_error(reply, outcome)

    def _report_hw_error(self, reply: NonceReply, outcome: Outcome) -> None:
        first = reply.chip_index not in self._warned_chips
        self._warned_chips.add(reply.chip_index)
        report = self._log.warning if first else self._log.debug
        report(
            "nonce failed verification",
            chip=reply.chip_index,
            reason=outcome.name.lower(),
            job_id=reply.job_id,
            nonce=f"{reply.nonce:08x}",
        )

    def _enqueue(self, found: FoundNonce) -> None:
        if self._sink is not None:
            self._sink(found)
            return
        nonces = self._nonces
        if len(nonces) >= self.nonce_queue_size:
            nonces.popleft()
            self._dropped += 1
        nonces.append(found)
        self._wake_nonce_waiter()

    def _wake_nonce_waiter(self, _task: object = None) -> None:
        """Resume :meth:`next_nonce` (a nonce arrived, or the receive task ended)."""
        waiter = self._nonce_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_register(self, reply: RegisterReply) -> None:
        waiter = self._waiters.pop((reply.chip_address, reply.register), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply.value)

    def _fail_waiters(self, error: DriverError) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(error)

    # -- work ---------------------------------------------------------------------------

    async def send_work(self, work: Work) -> None:
        """Send ``work`` under the next job id; while reconnecting keep only the latest."""
        if self._state is DriverState.STOPPED:
            raise DriverError(f"{self.spec.port}: driver is not started")
        if self._state is not DriverState.RUNNING:
            self._pending = work
            return
        await self._transmit(work)

    async def _transmit(self, work: Work) -> None:
        link = self._require_link()
        job_id = self._next_job_id
        frame = self.codec.encode_job(work, job_id)
        self._next_job_id = self.codec.next_job_id(job_id)
        self._checker.assign(job_id, work)  # before writing: a fast chip may answer at once
        generation = link.generation
        try:
            await link.write(frame)
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
        """Forget all work: nonces still arriving for it are counted as stale."""
        self._checker.flush()
        self._pending = None

    def deliver_nonces(self, sink: Callable[[FoundNonce], None] | None) -> bool:
        self._sink = sink
        return True

    async def next_nonce(self) -> FoundNonce:
        """The next verified nonce; DriverError once the driver has stopped.

        The receive task resolves one bare future per wait, so a nonce reaches the caller
        in a single loop step (a queue getter task plus ``asyncio.wait`` took three).
        """
        if self._nonces:
            return self._nonces.popleft()
        task = self._task
        if task is None or task.done():
            raise DriverError(f"{self.spec.port}: driver is not running")
        while not self._nonces:
            if task.done():
                cause = None if task.cancelled() else task.exception()
                raise DriverError(f"{self.spec.port}: driver stopped") from cause
            waiter = asyncio.get_running_loop().create_future()
            self._nonce_waiter = waiter
            try:
                await waiter
            finally:
                self._nonce_waiter = None
        return self._nonces.popleft()

    # -- configuration --------------------------------------------------------------------

    async def set_frequency(self, mhz: float) -> float:
        """Ramp to ``mhz`` (applied at the next bring-up if the chain is not running)."""
        try:
            actual = pll_for_frequency(self.chip_model, mhz).actual_mhz
        except ValueError as exc:
            raise DriverError(f"{self.spec.port}: {exc}") from exc
        self._target_mhz = float(mhz)
        async with self._freq_lock:
            if self._state is not DriverState.RUNNING:
                return actual
            generation = self._require_link().generation
            try:
                await self._ramp(self._mhz, mhz, guard=generation)
                await self._run_steps(self._hcn_steps(mhz), guard=generation)
            except SerialLinkLostError:
                self._note_lost(generation)
        return actual

    def _hcn_steps(self, mhz: float) -> list[Step]:
        """The hash-counting-number write for ``mhz`` (it scales with the clock)."""
        model = self.chip_model
        if model.hcn_correction is None:
            return []
        value = registers.hash_counting_number(model, self.spec.chips, mhz).to_bytes(4, "big")
        return [Send(frames.write_register(Reg.HASH_COUNTING_NUMBER, value))]

    async def set_version_mask(self, mask: int) -> None:
        """Let the chips roll ``mask`` (full-header chips roll only bits 13..28 of it).

        The BM1397 rolls nothing itself: the mask only tells whoever builds its work how
        many midstates to make, so it is just remembered.
        """
        if not 0 <= mask <= 0xFFFFFFFF:
            raise DriverError(f"{self.spec.port}: version mask {mask} is not a 32-bit value")
        if not self.chip_model.full_header:
            self._version_mask = mask
            return
        chip_mask = mask & DEFAULT_VERSION_MASK
        self._version_mask = chip_mask
        # Accept both masks while the chips switch, then only the new one.
        self._checker.version_mask |= chip_mask
        if self._state is DriverState.RUNNING:
            value = registers.version_mask_value(chip_mask)
            step = Send(frames.write_register(Reg.VERSION_MASK, value))
            generation = self._require_link().generation
            try:
                await self._run_steps([step], guard=generation)
            except SerialLinkLostError:
                self._note_lost(generation)
        self._checker.version_mask = chip_mask

    async def read_register(self, register: int, chip: int = 0, timeout: float = 1.0) -> int:  # noqa: ASYNC109 - a per-call reply deadline
        """Read one chip's register while hashing (the value is advisory: CRC-5 only)."""
        if self._state is not DriverState.RUNNING:
            raise DriverError(f"{self.spec.port}: cannot read registers while {self._state}")
        if not 0 <= chip < self.spec.chips:
            raise DriverError(f"{self.spec.port}: no chip {chip} in a {self.spec.chips}-chip chain")
        address = self.codec.addresses[chip]
        key = (address, register)
        waiter = self._waiters.get(key)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[key] = waiter
            await self._require_link().write(frames.read_register(register, address))
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(waiter)
        except TimeoutError:
            if self._waiters.get(key) is waiter:
                del self._waiters[key]
            raise DriverTimeoutError(
                f"{self.spec.port}: chip {chip} did not answer a read of {register:#04x}"
            ) from None


def _usb_id(port: str) -> tuple[int, int] | None:
    """The port's USB VID:PID as the OS lists it (``None``: not a USB device)."""
    return usb_id_of(os.path.realpath(port), list_ports.comports())


def _model_label(chip_id: int) -> str:
    try:
        return f"{model_by_chip_id(chip_id).name} ({chip_id:#06x})"
    except ValueError:
        return f"unknown ({chip_id:#06x})"
