"""Work slots and nonce verification, without I/O.

Each nonce reply is mapped to the work its job id names, the header is rebuilt with
the reported version, hashed and compared with the ticket the chips were given; stale
and duplicate nonces are told apart from hardware errors so each is counted for what
it is.
"""

from __future__ import annotations

import enum
import math
import struct
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from hashlib import sha256
from typing import Final

from stratum_client.asic.records import FoundNonce
from stratum_client.work.header import header_prefix, prevhash_to_header_order
from stratum_client.work.job import Work
from stratum_client.work.target import DIFF1_TARGET

from . import registers
from .chips import ChipModel
from .codec import NonceReply

__all__ = ["NonceChecker", "Outcome", "ticket_target"]

_DEDUPE_WINDOW: Final = 8192
_HEADER: Final = struct.Struct("<I72sI")
_MAX_HASH: Final = 1 << 256


class Outcome(enum.Enum):
    """What the nonce check decided about one nonce reply."""

    ACCEPTED = enum.auto()
    HW_ERROR = enum.auto()
    DUPLICATE = enum.auto()
    STALE = enum.auto()
    UNKNOWN_JOB = enum.auto()


@dataclass(frozen=True, slots=True)
class _Slot:
    """Work held under one chip job id, with what a nonce check needs precomputed."""

    work: Work
    generation: int
    tail: bytes
    """Header bytes 4..75 (prevhash, merkle root, ntime, nbits): fixed for the work."""
    versions: tuple[int, ...]
    """BM1397: the version of each midstate, by midstate index."""
    identity: tuple[str, bytes, int]
    job_version: int
    rollable: int
    """Bits the job lets the version differ in (its pool-granted mask)."""


class NonceChecker:
    """Maps nonce replies to work, verifies their hash, and filters duplicates.

    ``target`` is the exclusive bound on the hash (little-endian integer) a reported
    nonce must be under. A chip with ticket difficulty 2**k reports hashes whose top
    32 + k bits are zero, i.e. below ``2**(224 − k)``; the emulator scales that by
    1/``difficulty_scale``. Comparing against this target rather than the difficulty
    keeps genuine nonces a hair under 2**k (65535/65536 of it) from being rejected.
    """

    def __init__(self, model: ChipModel, target: int, window: int = _DEDUPE_WINDOW) -> None:
        self.model = model
        self.target = target
        self.version_mask = 0
        """Bits the chips were told to roll (full-header chips)."""
        self._slots: dict[int, _Slot] = {}
        self._generation = 0
        self._seen: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self._window = window

    def assign(self, job_id: int, work: Work) -> None:
        """Remember ``work`` under ``job_id``, replacing what the slot held."""
        tail = header_prefix(
            work.version,
            prevhash_to_header_order(work.job.prevhash),
            work.merkle_root,
            work.ntime,
            work.job.nbits,
        )[4:]
        self._slots[job_id] = _Slot(
            work=work,
            generation=self._generation,
            tail=tail,
            versions=tuple(m.version for m in work.midstates),
            identity=(work.job.job_id, work.extranonce2, work.ntime),
            job_version=work.job.version,
            rollable=work.job.version_mask,
        )

    def flush(self) -> None:
        """Make every slot stale (clean_jobs): late nonces for them are not passed on."""
        self._generation += 1

    def clear(self) -> None:
        """Forget every slot (the chips were reset and hold no work)."""
        self._generation += 1
        self._slots.clear()

    def check(self, reply: NonceReply, received_at: float) -> tuple[Outcome, FoundNonce | None]:
        """Verify one nonce reply; a FoundNonce for :attr:`Outcome.ACCEPTED` and
        :attr:`Outcome.STALE` (verified, but for work the chips should have dropped)."""
        slot = self._slots.get(reply.job_id)
        if slot is None:
            return Outcome.UNKNOWN_JOB, None
        version = self._version(slot, reply)
        if version is None:
            return Outcome.HW_ERROR, None
        digest = sha256(sha256(_HEADER.pack(version, slot.tail, reply.nonce)).digest()).digest()
        value = int.from_bytes(digest, "little")
        if value >= self.target:
            return Outcome.HW_ERROR, None
        if self._is_duplicate((*slot.identity, reply.nonce, version)):
            return Outcome.DUPLICATE, None
        found = FoundNonce(
            work=slot.work,
            nonce=reply.nonce,
            version=version,
            chip=reply.chip_index,
            core=reply.core,
            hash=digest,
            difficulty=DIFF1_TARGET / value if value else math.inf,
            received_at=received_at,
        )
        if slot.generation != self._generation or (version ^ slot.job_version) & ~slot.rollable:
            # Flushed work, or a version outside the mask stamped on the job. Still a real
            # hash: the daemon classifies it against its own job table and mask in force,
            # so a share on it is submitted or counted lost with its reason.
            return Outcome.STALE, found
        return Outcome.ACCEPTED, found

    def _version(self, slot: _Slot, reply: NonceReply) -> int | None:
        """The header version the chip hashed, or ``None`` if the reply cannot be right."""
        if not self.model.full_header:
            index = reply.midstate_index
            return slot.versions[index] if index < len(slot.versions) else None
        if reply.version_bits & ~self.version_mask:
            return None
        return slot.work.version | reply.version_bits

    def _is_duplicate(self, key: tuple[object, ...]) -> bool:
        seen = self._seen
        if key in seen:
            return True
        seen[key] = None
        if len(seen) > self._window:
            seen.popitem(last=False)
        return False


def ticket_target(ticket_difficulty: float, scale: float) -> int:
    """Hash bound for a chip ticket (a power of two) scaled down by ``scale``."""
    bound = Fraction(registers.ticket_target(ticket_difficulty)) / Fraction(scale)
    return min(math.floor(bound), _MAX_HASH)
