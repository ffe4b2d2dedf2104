"""The fake chip's driver: only the hooks of stratum_client's ``AsicDriver`` base class.

It imports nothing of the built-in BM13xx driver. The base owns the link, the receive
task, nonce delivery, counters and recovery; this class encodes jobs, parses replies,
verifies every nonce's hash and publishes its chip facts (so the daemon can show cores
and a power figure for it).
"""

from __future__ import annotations

import hashlib
import time

from stratum_client.asic.base import AsicDriver, ChainInfo, ChipFacts, DeviceSpec, FoundNonce
from stratum_client.asic.detect import DetectedChip, ProbeResult
from stratum_client.asic.transport import SerialLink
from stratum_client.errors import ChipCountError, DriverError
from stratum_client.work.header import header_prefix, prevhash_to_header_order
from stratum_client.work.job import Work
from stratum_client.work.target import difficulty_to_target, share_difficulty

from .wire import CHIP_FRAMES, ENUMERATE, IDENT, JOB, NONCE, TICKET, Splitter

__all__ = ["CHIP_ID", "FakeChipDriver"]

CHIP_ID = 0xFA4E
_STEP_MHZ = 6.25


def _idents(splitter: Splitter, data: bytes) -> list[int]:
    return [IDENT.parse(f).chips for f in splitter.feed(data) if f[:2] == b"\x5aI"]


class FakeChipDriver(AsicDriver):
    """A chain of fake chips on one serial link."""

    facts = ChipFacts(
        "FAKE1",
        cores=8,
        small_cores=64,
        default_mhz=100.0,
        default_mv=900.0,
        static_watts=0.5,
        watts_at_default=2.5,
    )

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self._mhz = float(spec.frequency_mhz or self.facts.default_mhz)
        self._target = difficulty_to_target(spec.effective_ticket_difficulty)
        self._reset()

    def _reset(self) -> None:
        self._splitter = Splitter(CHIP_FRAMES)
        self._jobs: dict[int, tuple[Work, bytes]] = {}
        self._flushed: set[int] = set()
        self._seen: set[tuple[int, int]] = set()
        self._next_id = 0

    @classmethod
    async def detect(cls, port: str, *, timeout: float = 1.0) -> ProbeResult:  # noqa: ASYNC109
        async with SerialLink(port) as link:
            await link.write(ENUMERATE)
            splitter = Splitter(CHIP_FRAMES)
            counts = await link.collect(
                lambda data: _idents(splitter, data), first_timeout=timeout, quiet=0.05
            )
        chips = counts[0] if counts else 0
        model = cls.facts.model
        return ProbeResult(port, tuple(DetectedChip(model, CHIP_ID, i) for i in range(chips)))

    @classmethod
    def reachable_mhz(cls, mhz: float) -> float:
        if not 50.0 <= mhz <= 200.0:
            raise DriverError(f"FAKE1 runs at 50..200 MHz, not {mhz:g}")
        return round(mhz / _STEP_MHZ) * _STEP_MHZ

    @property
    def job_interval(self) -> float:
        return 0.25

    @property
    def frequency_mhz(self) -> float:
        return self._mhz

    async def set_frequency(self, mhz: float) -> float:
        self._mhz = self.reachable_mhz(mhz)
        return self._mhz

    async def set_version_mask(self, mask: int) -> None:
        """The fake chip rolls no version bits."""

    async def _bring_up(self) -> ChainInfo:
        self._splitter = Splitter(CHIP_FRAMES)
        await self.link.write(ENUMERATE)
        counts = await self.link.collect(
            lambda data: _idents(self._splitter, data), first_timeout=1.0, quiet=0.05
        )
        found = counts[0] if counts else 0
        if found != self.spec.chips:
            raise ChipCountError(self.spec.chips, found, self.spec.port)
        await self.link.write(TICKET.build({"target": self._target}))
        chips = self.spec.chips
        return ChainInfo(self.model, chips, (CHIP_ID,) * chips, tuple(range(chips)))

    async def _send_job(self, work: Work) -> None:
        job_id, self._next_id = self._next_id, (self._next_id + 1) % 256
        prefix = header_prefix(
            work.version,
            prevhash_to_header_order(work.job.prevhash),
            work.merkle_root,
            work.ntime,
            work.job.nbits,
        )
        self._jobs[job_id] = (work, prefix)
        self._flushed.discard(job_id)
        self._seen = {seen for seen in self._seen if seen[0] != job_id}
        await self.link.write(JOB.build({"job_id": job_id, "header": prefix + bytes(4)}))

    def _on_flush(self) -> None:
        self._flushed = set(self._jobs)

    def _on_bytes(self, data: bytes) -> None:
        for frame in self._splitter.feed(data):
            if frame[:2] == b"\x5aN":
                reply = NONCE.parse(frame)
                self._on_nonce(reply.job_id, min(reply.chip, self.spec.chips - 1), reply.nonce)

    def _on_nonce(self, job_id: int, chip: int, nonce: int) -> None:
        slot = self._jobs.get(job_id)
        if slot is None:
            self._reject(chip)
            return
        if (job_id, nonce) in self._seen:
            self._reject(chip, duplicate=True)
            return
        work, prefix = slot
        header = prefix + nonce.to_bytes(4, "little")
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        if int.from_bytes(digest, "little") > self._target:
            self._reject(chip)
            return
        self._seen.add((job_id, nonce))
        found = FoundNonce(
            work, nonce, work.version, chip, 0, digest, share_difficulty(digest), time.monotonic()
        )
        self._accept(found, stale=job_id in self._flushed)
