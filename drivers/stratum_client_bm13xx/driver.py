"""The driver for BM1366/BM1368/BM1370/BM1397 chains: one class, chip facts from the codec.

What differs between models (frames, init, job ids, PLL, baud) lives in the codec and
model records. The base class (:class:`~stratum_client.asic.base.AsicDriver`) owns the
link, the receive task, the nonce queue and unplug recovery; this module fills in its
hooks: bring-up, encoding work, turning replies into verified nonces, and detection.

**Every nonce is verified here.** CRC-5 lets 1 in 32 corrupted replies through and an
emulator may report garbage on purpose, so each nonce is mapped to the work its job id
names, the header is rebuilt with the reported version, hashed and compared against the
ticket the chips were given (see :class:`NonceChecker`). Only nonces that pass reach
:meth:`Bm13xxDriver.next_nonce`, or the sink given to :meth:`Bm13xxDriver.deliver_nonces`.

**Version rolling starts disabled.** Full-header chips get a zero version mask until the
daemon calls :meth:`Bm13xxDriver.set_version_mask` with what the pool granted, so a pool
without rolling never sees rolled versions (the reference firmware sets ``0x1fffe000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from typing import Final

from serial.tools import list_ports

from stratum_client.asic.base import AsicDriver, ChainInfo, DeviceSpec, DriverState
from stratum_client.asic.detect import ProbeResult
from stratum_client.asic.transport import SerialLink
from stratum_client.errors import DriverError, DriverTimeoutError, SerialLinkLostError
from stratum_client.work.job import DEFAULT_VERSION_MASK, Work

from . import frames, pacing, registers
from .bringup import chain_info, hcn_steps, init_plan, version_mask_steps
from .chipid import FIRST_REPLY_TIMEOUT, QUIET_GAP, ChipIdCollector, ChipIdReply
from .chips import ChipModel, model_by_name
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

_REFERENCE_RAMP_PAUSE: Final = 0.1
"""Pause per ramp step the reference firmware uses; BM1397 sub-step gaps scale with it."""
_FLUSH_GAP: Final = 0.02
"""Idle time after which frames held back by the parser's overlap rule are decided."""


class Bm13xxDriver(AsicDriver):
    """One chain of BM13xx chips of a single model behind one serial link.

    Subclasses only set :attr:`model` (and ``midstates`` for midstate chips); the chip
    facts follow from the model record. The base's receive task feeds :meth:`_on_bytes`;
    when the link vanishes it brings the chain up again through :meth:`_bring_up`.
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("model"), str):
            with contextlib.suppress(DriverError):  # an unknown model fails at construction
                cls.facts = cls._resolve_model().facts

    def __init__(self, spec: DeviceSpec) -> None:
        self.chip_model = self._resolve_model()
        super().__init__(spec)
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
        self._freq_lock = asyncio.Lock()
        self._ramp_task: asyncio.Task[None] | None = None
        self._version_mask = 0
        self._reset()

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

    def _reset(self) -> None:
        self._parser: ReplyParser[Reply] = self.codec.parser()
        self._crc_base = self._unknown = 0
        self._waiters: dict[tuple[int, int], asyncio.Future[int]] = {}
        self._next_job_id = self.chip_model.job_ids()[0]
        self._warned_chips: set[int] = set()
        self._checker.clear()

    # -- class-level facts ----------------------------------------------------------------

    @classmethod
    async def detect(cls, port: str, *, timeout: float = FIRST_REPLY_TIMEOUT) -> ProbeResult:  # noqa: ASYNC109 - a reply deadline
        """Broadcast a chip-id read at 115 200 baud and report every BM13xx that answered.

        Chips already switched to a fast baud rate by a running miner do not answer;
        power cycle them first.
        """
        async with SerialLink(port) as link:
            await link.write(frames.read_register(Reg.CHIP_ID))
            replies = await link.collect(ChipIdCollector(), first_timeout=timeout, quiet=QUIET_GAP)
        return ProbeResult(port, tuple(reply.detected() for reply in replies))

    @classmethod
    def reachable_mhz(cls, mhz: float) -> float:
        """The PLL frequency closest to ``mhz`` this model can run at."""
        try:
            return pll_for_frequency(cls._resolve_model(), mhz).actual_mhz
        except ValueError as exc:
            raise DriverError(str(exc)) from exc

    # -- read-only state ----------------------------------------------------------------

    @property
    def crc_errors(self) -> int:
        """Reply candidates rejected by CRC-5 (line noise, torn frames)."""
        return self._crc_base + self._parser.crc_errors

    @property
    def unknown_job_nonces(self) -> int:
        """Nonce replies naming a job id that holds no work (also counted as HW errors)."""
        return self._unknown

    @property
    def effective_ticket_difficulty(self) -> float:
        """Programmed ticket × ``difficulty_scale``: what every passed nonce meets."""
        return self.ticket_difficulty * self.spec.difficulty_scale

    @property
    def version_mask(self) -> int:
        """The rolling mask in force (full-header chips: what register 0xA4 holds)."""
        return self._version_mask

    @property
    def target_baudrate(self) -> int:
        """The rate chain and host switch to at the end of bring-up."""
        return self._fast_baud

    @property
    def job_interval(self) -> float:
        model, chips, mask = self.chip_model, self.spec.chips, self._version_mask
        return pacing.job_interval_ms(model, chips, self._mhz, mask, self._fast_baud) / 1000.0

    @property
    def frequency_mhz(self) -> float:
        return self._mhz

    # -- bring-up -----------------------------------------------------------------------

    async def _bring_up(self) -> ChainInfo:
        """Enumerate, run the model's init, ramp and switch baud; the link is at 115 200."""
        self._reset_parser()
        await self._plan_baud_for_port()
        body, tail = init_plan(
            self.codec, self._target_mhz, self.spec.ticket_difficulty, self._version_mask
        )
        self._mhz = self.options.initial_mhz
        await self._run_steps(body)
        if self.options.ramp_step_delay == 0:  # else it runs while mining (_on_running)
            await self._ramp(self.options.initial_mhz, self._target_mhz)
        await self._run_steps(tail)
        if self._baud_frame is not None:
            await self.link.write(self._baud_frame)
            await self._set_host_baud(self._fast_baud)
            await self._check_chips_answer()
        self._checker.clear()
        self._checker.version_mask = self._version_mask
        if self._chain is None:
            raise DriverError(f"{self.chip_model.name}: the codec's init never enumerates")
        return self._chain

    def _on_running(self) -> None:
        """A ramp that takes time (76 pauses of 0.1 s from 50 to 525 MHz) runs once the
        chain mines, so work flows from its first step instead of after its last."""
        if self.options.ramp_step_delay > 0:
            self._ramp_task = asyncio.create_task(
                self._ramp_up(self.link.generation), name=f"ramp {self.spec.port}"
            )

    async def _ramp_up(self, generation: int) -> None:
        """Walk to the target (and on to a newer one asked for meanwhile), then set HCN."""
        try:
            async with self._freq_lock:
                done: float | None = None
                while (target := self._target_mhz) != done:  # no await from check to end
                    if not await self._walk_to(target, generation):
                        return
                    done = target
            self._log.info("frequency ramp done", mhz=self._mhz)
        except (DriverError, ValueError) as exc:  # a PLL step the model cannot reach
            self._log.error("frequency ramp failed", error=str(exc), mhz=self._mhz)

    async def _walk_to(self, mhz: float, generation: int) -> bool:
        """Ramp the PLL to ``mhz``, then set the HCN for it (lock held); False: link lost."""
        try:
            await self._ramp(self._mhz, mhz, guard=generation)
            hcn = hcn_steps(self.chip_model, self.spec.chips, mhz)
            await self._run_steps(hcn, guard=generation)
        except SerialLinkLostError:
            self._note_lost(generation)
            return False
        return True

    async def _run_steps(
        self, steps: list[Step], delay_scale: float = 1.0, guard: int | None = None
    ) -> None:
        """Replay init steps; with ``guard`` (a link generation) abort if the chain restarted."""
        for step in steps:
            match step:
                case Send(frame=frame):
                    link = self.link
                    if guard is not None and (
                        link.generation != guard or self._state is not DriverState.RUNNING
                    ):
                        raise SerialLinkLostError(f"{self.spec.port}: chain restarted")
                    await link.write(frame)
                case Delay(ms=ms):
                    await asyncio.sleep(ms / 1000.0 * delay_scale)
                case CountChips():
                    await self._enumerate(step)
                case SetHostBaud(baud=baud):
                    await self._set_host_baud(baud)

    async def _read_chip_ids(self, first: float) -> list[ChipIdReply]:
        quiet = self.options.enumerate_quiet
        return await self.link.collect(ChipIdCollector(), first_timeout=first, quiet=quiet)

    async def _enumerate(self, step: CountChips) -> None:
        replies = await self._read_chip_ids(step.timeout_ms / 1000.0)
        self._chain = chain_info(self.codec, replies, self.spec.chips, self.spec.port)
        self._log.debug("chain enumerated", chips=self._chain.chip_count)

    async def _ramp(self, start_mhz: float, target_mhz: float, guard: int | None = None) -> None:
        """Walk the PLL in 6.25 MHz steps; BM1397 sub-step gaps shrink with the step delay."""
        scale = min(1.0, self.options.ramp_step_delay / _REFERENCE_RAMP_PAUSE)
        for mhz in ramp_plan(start_mhz, target_mhz):
            steps = registers.frequency_steps(self.chip_model, mhz)
            await self._run_steps(steps, delay_scale=scale, guard=guard)
            self._mhz = pll_for_frequency(self.chip_model, mhz).actual_mhz
            await asyncio.sleep(self.options.ramp_step_delay)

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
        await self.link.write(frames.read_register(Reg.CHIP_ID))
        replies = await self._read_chip_ids(FIRST_REPLY_TIMEOUT)
        if len(replies) < self.spec.chips:
            message = silent_after_switch(self.spec.port, self._baud, len(replies), self.spec.chips)
            raise UnsupportedBaudError(message)

    async def _set_host_baud(self, baud: int) -> None:
        await self.link.set_baudrate(baud)
        self._reset_parser()  # bytes straddling the switch are garbage

    def _reset_parser(self) -> None:
        self._crc_base += self._parser.crc_errors
        self._parser = self.codec.parser()

    # -- receiving --------------------------------------------------------------------

    def _read_timeout(self) -> float:
        return _FLUSH_GAP if self._parser.pending else self.idle_read

    def _on_bytes(self, data: bytes) -> None:
        parser = self._parser
        for reply in parser.feed(data) if data else parser.flush():
            if isinstance(reply, NonceReply):
                self._on_nonce(reply)
            else:
                self._on_register(reply)

    def _on_nonce(self, reply: NonceReply) -> None:
        outcome, found = self._checker.check(reply, time.monotonic())
        match outcome:
            case Outcome.ACCEPTED | Outcome.STALE if found is not None:
                self._accept(found, stale=outcome is Outcome.STALE)
            case Outcome.DUPLICATE:
                self._reject(reply.chip_index, duplicate=True)
            case _:
                self._unknown += outcome is Outcome.UNKNOWN_JOB
                self._reject(reply.chip_index)
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

    def _on_register(self, reply: RegisterReply) -> None:
        waiter = self._waiters.pop((reply.chip_address, reply.register), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply.value)

    def _on_link_down(self, error: DriverError) -> None:
        """Fail register reads in flight; nonces for work sent so far can no longer come."""
        if self._ramp_task is not None:
            self._ramp_task.cancel()
        self._checker.clear()
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(error)

    # -- work ---------------------------------------------------------------------------

    async def _send_job(self, work: Work) -> None:
        await self.link.write(self._encode_job(work))

    def _encode_job(self, work: Work) -> bytes:
        """``work`` under the next job id, assigned before the write (a chip may answer at once)."""
        job_id = self._next_job_id
        frame = self.codec.encode_job(work, job_id)
        self._next_job_id = self.codec.next_job_id(job_id)
        self._checker.assign(job_id, work)
        return frame

    def _on_flush(self) -> None:
        self._checker.flush()

    # -- configuration --------------------------------------------------------------------

    async def set_frequency(self, mhz: float) -> float:
        """Ramp to ``mhz`` (applied at the next bring-up if the chain is not running)."""
        try:
            actual = self.reachable_mhz(mhz)
        except DriverError as exc:
            raise DriverError(f"{self.spec.port}: {exc}") from exc
        self._target_mhz = float(mhz)
        ramping = self._ramp_task is not None and not self._ramp_task.done()
        if self._state is not DriverState.RUNNING or ramping:
            return actual  # the next bring-up, or the ramp under way, walks to it
        async with self._freq_lock:
            if self._state is not DriverState.RUNNING:
                return actual
            await self._walk_to(mhz, self.link.generation)
        return actual

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
            generation = self.link.generation
            try:
                await self._run_steps(version_mask_steps(chip_mask), guard=generation)
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
            await self.link.write(frames.read_register(register, address))
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
