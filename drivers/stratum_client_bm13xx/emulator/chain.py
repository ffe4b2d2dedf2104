"""A sans-IO chain of BM13xx chips that speaks the serial protocol and really hashes.

:class:`EmulatedChain` takes host bytes in (:meth:`~EmulatedChain.receive`) and returns
the bytes the chips answer; :meth:`~EmulatedChain.hash_step` does a bounded amount of
real double SHA-256 on the newest job and returns the nonce replies found. It never reads
a clock or touches a port, so a test can drive it byte by byte and a server
(:mod:`.server`) can put it on a pseudo-terminal.

How the search is laid out, and why:

* **Chips own slices of the nonce space.** A nonce carries its chip's address byte in
  bits 17..24 and its core in bits 25..31 of the big-endian view (see
  :mod:`stratum_client_bm13xx.chips`), so the nonce alone says which chip found it. Chip ``i``
  of ``N`` searches the nonces whose address byte lies in ``[i·256//N, (i+1)·256//N)``.
* **Everything that runs in parallel on silicon is interleaved here.** The scan order
  cycles fastest through the small cores (the rolled versions of full-header chips, or
  the midstates of a BM1397), then through the chips, then the cores, then the rest of
  each chip's range. A short run therefore already reports nonces from every chip and
  every rolled version, as a real chain would within milliseconds.
* **Difficulty is scaled.** A chip with ticket difficulty 2**k reports a hash below
  2**(224 − k); this chain reports below that bound divided by ``difficulty_scale``
  (floored), exactly the bound the driver checks against, so a CPU finds nonces at a
  useful rate and every one of them is genuine.
* A job frame's ``starting_nonce`` is ignored (the reference firmware always sends 0).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import structlog

from stratum_client.errors import FrameError
from stratum_client_bm13xx import frames, registers
from stratum_client_bm13xx.chips import ChipModel, model_by_name, next_pow2
from stratum_client_bm13xx.codec import FullHeaderJob, codec_for
from stratum_client_bm13xx.frames import CommandFrame, CommandKind
from stratum_client_bm13xx.pll import pll_for_frequency
from stratum_client_bm13xx.registers import Reg
from stratum_client_bm13xx.rx import HostFrameParser

from .faults import FaultInjector, Faults
from .scan import VERSION_SHIFT, FullHeaderScan, Hit, Layout, MidstateScan, Scan

__all__ = [
    "POWER_UP_BAUD",
    "POWER_UP_MHZ",
    "ChipState",
    "EmulatedChain",
    "ReportedNonce",
]

POWER_UP_BAUD = registers.POWER_UP_BAUD
POWER_UP_MHZ = 50.0
"""The frequency the reference firmware assumes chips start at before its ramp."""
DEFAULT_RECORD_LIMIT = 100_000
"""Reported nonces remembered for inspection (the oldest are forgotten beyond this)."""

_MAX_TARGET = 1 << 256
_COUNTER_REGISTERS = frozenset(
    {
        Reg.DOMAIN_0_COUNT,
        Reg.DOMAIN_1_COUNT,
        Reg.DOMAIN_2_COUNT,
        Reg.DOMAIN_3_COUNT,
    }
)

_log = structlog.get_logger(__name__)


@dataclass
class ChipState:
    """One chip's configuration as the host programmed it (inspect, do not modify)."""

    index: int
    address: int = 0
    awaiting_address: bool = False
    """Set by "chain inactive": the next set-address command is for this chip."""
    mhz: float = POWER_UP_MHZ
    ticket_bits: int = 0
    """Ticket difficulty is ``2**ticket_bits`` (0 at power-up: every hash below 2**224)."""
    version_mask: int = 0
    """Header version bits the chip may roll (bits 13..28; 0 until register 0xA4 is set)."""
    registers: dict[int, bytes] = field(default_factory=dict)
    """Last value written to each register."""
    hashes: int = 0
    """Double SHA-256 evaluations done in this chip's slice of the nonce space."""

    @property
    def ticket_difficulty(self) -> int:
        return 1 << self.ticket_bits


@dataclass(frozen=True, slots=True)
class ReportedNonce:
    """A nonce the chain reported, with what it hashed, for independent checks."""

    job_id: int
    """The job id the host sent (the reply carries what the id byte can hold of it)."""
    nonce: int
    chip: int
    core: int
    small_core: int
    """Full-header chips: which parallel version slot found it; 0 on the BM1397."""
    version_bits: int
    """OR-ed into the job's version (full-header chips); 0 on the BM1397."""
    midstate_index: int
    """BM1397: which of the job's midstates; 0 on full-header chips."""
    digest: bytes
    """Raw double SHA-256 of the header."""


class EmulatedChain:
    """``chips`` chips of ``model`` behind one serial line, from power-up on.

    ``difficulty_scale`` multiplies the programmed ticket difficulty (the driver must be
    told the same scale). ``seed`` makes the fault injection reproducible; the search
    itself is deterministic. ``record_limit`` bounds :attr:`reported`.
    """

    def __init__(
        self,
        model: str | ChipModel,
        chips: int,
        *,
        difficulty_scale: float = 1.0,
        faults: Faults | None = None,
        seed: int | None = None,
        record_limit: int | None = DEFAULT_RECORD_LIMIT,
    ) -> None:
        self.model = model if isinstance(model, ChipModel) else model_by_name(model)
        self.codec = codec_for(self.model, chips)
        self.chip_count = chips
        if not (math.isfinite(difficulty_scale) and difficulty_scale > 0):
            raise ValueError(f"difficulty scale must be finite and > 0, got {difficulty_scale}")
        self.difficulty_scale = float(difficulty_scale)
        self.faults = faults if faults is not None else Faults()
        if any(chip >= chips for chip in self.faults.dead_chips):
            raise ValueError(f"dead chips {sorted(self.faults.dead_chips)} outside 0..{chips - 1}")
        self._injector = FaultInjector(self.faults, random.Random(seed))
        self.reported: deque[ReportedNonce] = deque(maxlen=record_limit)
        """Every nonce reported (up to ``record_limit``), oldest first."""
        self.hashes = 0
        """Double SHA-256 evaluations since construction (across resets)."""
        self.jobs_received = 0
        """Job frames taken since construction: a change means a fresh search began."""
        self._layout = Layout(chips)
        self._parallel = next_pow2(self.model.small_cores) // next_pow2(self.model.cores)
        self.reset()

    # -- state ------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-cycle: 115 200 baud, no addresses, default registers, no jobs."""
        self.chips = tuple(ChipState(i) for i in range(self.chip_count))
        self.baudrate = POWER_UP_BAUD
        self._parser = HostFrameParser()
        self._jobs: dict[int, Scan] = {}
        self._newest: int | None = None
        self._targets = [self._target_for(chip) for chip in self.chips]

    @property
    def addresses(self) -> tuple[int, ...]:
        """Each chip's current address, in chain order."""
        return tuple(chip.address for chip in self.chips)

    @property
    def job_ids(self) -> tuple[int, ...]:
        """Job ids held in the chips' slots."""
        return tuple(self._jobs)

    @property
    def current_job_id(self) -> int | None:
        """The job being searched (the one received last)."""
        return self._newest

    @property
    def pending_input(self) -> int:
        """Host bytes held back waiting for the rest of a frame."""
        return self._parser.pending

    @property
    def has_work(self) -> bool:
        """Whether :meth:`hash_step` would hash anything."""
        scan = self._current()
        return scan is not None and len(self.faults.dead_chips) < self.chip_count

    def search_seconds(self) -> float | None:
        """Seconds silicon would take to exhaust the newest job (``None``: no job).

        Each small core does one hash per clock. Full-header chips share a job's
        nonces × rolled versions among all small cores; a BM1397 core hashes the job's
        midstates side by side, so its nonces go at one per core per clock. The slowest
        live chip's slice decides.
        """
        scan = None if self._newest is None else self._jobs.get(self._newest)
        live = [c for c in self.chips if c.index not in self.faults.dead_chips]
        if scan is None or not live:
            return None
        model = self.model
        lanes = model.small_cores if model.full_header else model.cores
        work = (self._layout.interval << 24) * scan.versions
        return max(work / (lanes * chip.mhz * 1e6) for chip in live)

    def effective_difficulty(self, chip: int = 0) -> float:
        """Ticket difficulty × scale: the difficulty a chip's nonces meet (to 1 part in 2**16)."""
        return self.chips[chip].ticket_difficulty * self.difficulty_scale

    def target(self, chip: int = 0) -> int:
        """Exclusive bound on the little-endian hash of every nonce ``chip`` reports."""
        return self._targets[chip]

    def _target_for(self, chip: ChipState) -> int:
        bound = Fraction(registers.ticket_target(chip.ticket_difficulty))
        return min(math.floor(bound / Fraction(self.difficulty_scale)), _MAX_TARGET)

    # -- host → chips -----------------------------------------------------------------

    def receive(self, data: bytes) -> bytes:
        """Take host bytes (any split); return the replies of every frame they complete."""
        return b"".join(self._handle(frame) for frame in self._parser.feed(data))

    def flush_input(self) -> bytes:
        """The line went idle: settle frames held back by framing ambiguity."""
        return b"".join(self._handle(frame) for frame in self._parser.flush())

    def _handle(self, frame: bytes) -> bytes:
        try:
            if frame[2] == frames.JOB_HEADER:
                self._on_job(frame)
                return b""
            return self._on_command(frames.parse_command(frame))
        except (FrameError, ValueError) as exc:
            _log.debug("frame ignored", frame=frame.hex(" "), reason=str(exc))
            return b""

    def _on_command(self, command: CommandFrame) -> bytes:
        match command.kind:
            case CommandKind.READ:
                return self._read(command)
            case CommandKind.WRITE:
                self._write(command)
            case CommandKind.INACTIVE:
                for chip in self.chips:
                    chip.awaiting_address = True
            case CommandKind.SET_ADDRESS:
                self._set_address(command.chip_address)
        return b""

    def _addressed(self, command: CommandFrame) -> list[ChipState]:
        """Chips a command reaches: all, or every chip at its address (several, unaddressed)."""
        if command.broadcast:
            return list(self.chips)
        return [chip for chip in self.chips if chip.address == command.chip_address]

    def _set_address(self, address: int) -> None:
        for chip in self.chips:
            if chip.awaiting_address:
                chip.address, chip.awaiting_address = address, False
                return

    def _read(self, command: CommandFrame) -> bytes:
        replies = []
        for chip in self._addressed(command):
            if command.register == Reg.CHIP_ID:
                frame = self.codec.encode_chip_id_reply(chip.address)
            else:
                value = self._register_value(chip, command.register)
                frame = self.codec.encode_register_reply(value, chip.address, command.register)
            replies.append(self._injector.register_reply(frame))
        return b"".join(replies)

    def _register_value(self, chip: ChipState, register: int) -> int:
        """What a read returns: live counters, else the last write, else a power-up value."""
        counted = int(chip.hashes / self.difficulty_scale) >> 32
        if register == Reg.TOTAL_COUNT:
            return counted & 0xFFFFFFFF
        if register in _COUNTER_REGISTERS:
            return (counted // 4) & 0xFFFFFFFF
        if register == Reg.ERROR_COUNT:
            return 0
        if register == Reg.HASHRATE_BM1397 and not self.model.full_header:
            nominal = chip.mhz * 1e6 * self.model.small_cores
            return int(nominal) >> 20 & 0x7FFFFFFF
        stored = chip.registers.get(register) or _power_up_value(self.model, register)
        return int.from_bytes(stored, "big")

    def _write(self, command: CommandFrame) -> None:
        register, value = command.register, command.value
        if len(value) != 4:
            return
        chips = self._addressed(command)
        for chip in chips:
            chip.registers[register] = value
            self._apply(chip, register, value)
        baud = registers.baud_after_write(self.model, register, value)
        if baud is not None and chips:
            self.baudrate = baud

    def _apply(self, chip: ChipState, register: int, value: bytes) -> None:
        """Side effects of a register write that the emulation models."""
        if register == Reg.PLL0:
            chip.mhz = _pll_mhz(self.model, value) or chip.mhz
        elif register == Reg.TICKET_MASK:
            chip.ticket_bits = min(_ticket_mask(value).bit_length(), 32)
            self._targets[chip.index] = self._target_for(chip)
        elif register == Reg.VERSION_MASK:
            chip.version_mask = int.from_bytes(value[2:4], "big") << VERSION_SHIFT

    def _on_job(self, frame: bytes) -> None:
        job = self.codec.decode_job(frame)
        scan: Scan
        if isinstance(job, FullHeaderJob):
            union = 0
            for chip in self.chips:
                union |= chip.version_mask
            scan = FullHeaderScan(job, union >> VERSION_SHIFT, self._parallel, self._layout)
        else:
            scan = MidstateScan(job, self._layout)
        self._jobs[job.job_id] = scan  # a slot holds its job until overwritten
        self._newest = job.job_id
        self.jobs_received += 1

    # -- hashing ----------------------------------------------------------------------

    def _current(self) -> Scan | None:
        scan = None if self._newest is None else self._jobs.get(self._newest)
        return None if scan is None or scan.exhausted else scan

    def hash_step(self, max_hashes: int) -> bytes:
        """Hash about ``max_hashes`` headers of the newest job; return the nonce replies.

        Work is done in whole rounds of parallel versions/midstates (at least one), so a
        call may exceed a budget smaller than a round. Dead chips' positions are skipped
        without hashing. :attr:`hashes` counts what was actually hashed.
        """
        scan = self._current()
        dead = self.faults.dead_chips
        if scan is None or max_hashes <= 0 or len(dead) >= self.chip_count:
            return b""
        loosest = max(t for i, t in enumerate(self._targets) if i not in dead)
        counts = [0] * self.chip_count
        hits = scan.run(max_hashes, loosest, dead, counts)
        for chip, count in zip(self.chips, counts, strict=True):
            chip.hashes += count
        self.hashes += sum(counts)
        return b"".join(self._report(scan, hit) for hit in hits)

    def _report(self, scan: Scan, hit: Hit) -> bytes:
        """The reply for one hit, if its chip's own ticket and version mask allow it."""
        chip = self.chips[hit.chip]
        if int.from_bytes(hit.digest, "little") >= self._targets[hit.chip]:
            return b""
        if hit.version_bits & ~chip.version_mask:
            return b""
        nonce = int.from_bytes(hit.nonce_bytes, "little")
        job_id = scan.job.job_id
        echoed = self._echoed_job_id(job_id)
        if isinstance(scan, FullHeaderScan):
            frame = self.codec.encode_nonce_reply(
                nonce, echoed, version_bits=hit.version_bits, small_core=hit.sub
            )
        else:
            frame = self.codec.encode_nonce_reply(nonce, echoed, midstate_index=hit.sub)
        self.reported.append(
            ReportedNonce(
                job_id=job_id,
                nonce=nonce,
                chip=hit.chip,
                core=hit.nonce_bytes[0] >> 1,
                small_core=hit.sub if isinstance(scan, FullHeaderScan) else 0,
                version_bits=hit.version_bits,
                midstate_index=0 if isinstance(scan, FullHeaderScan) else hit.sub,
                digest=hit.digest,
            )
        )
        return self._injector.nonce_reply(frame)

    def _echoed_job_id(self, job_id: int) -> int:
        """The job id as the reply's id byte can carry it (extra bits are lost on silicon)."""
        model = self.model
        return ((job_id << model.reply_job_shift) & model.reply_job_mask) >> model.reply_job_shift


def _ticket_mask(value: bytes) -> int:
    """Register 0x14 back to the mask: bytes big-endian, each byte's bits reversed."""
    return int.from_bytes(bytes(int(f"{b:08b}"[::-1], 2) for b in value), "big")


def _pll_mhz(model: ChipModel, value: bytes) -> float | None:
    """Frequency a PLL0 value selects: 25 MHz · fb / (refdiv · p1 · p2); None if invalid."""
    _vdo, fb, refdiv, post = value
    p1, p2 = post >> 4, post & 0x0F
    if model.pll_post_minus_one:
        p1, p2 = p1 + 1, p2 + 1
    divider = refdiv * p1 * p2
    return 25.0 * fb / divider if divider and fb else None


def _power_up_value(model: ChipModel, register: int) -> bytes:
    """Plausible power-up contents of a register never written."""
    if register == Reg.MISC_CONTROL and not model.full_header:
        return registers.MISC_CONTROL_DEFAULT_BAUD
    if register == Reg.PLL0:
        try:
            return pll_for_frequency(model, POWER_UP_MHZ).register
        except ValueError:
            return bytes(4)
    return bytes(4)
