"""Turn a :class:`Job` into :class:`Work` units, one per extranonce2.

Building work sits on the hot path (a fast chain wants a new unit every few
milliseconds), so :class:`JobBuilder` validates a job once and precomputes everything
that does not depend on extranonce2: the coinbase head and tail, the branch, the
header-order prevhash and the packed ntime/nbits. A unit then costs one coinbase hash,
one dSHA256 per branch entry and, for midstate chips, one compression per midstate.

Midstate chips get midstates for ``v, inc(v), inc²(v), inc³(v)``, ``inc`` rolling within
the mask bits the job version leaves clear: every rolled version then keeps the job's own
bits, as chip-side rolling does (the chip ORs its bits in), which is what lets a pool that
ORs the submitted bits into the job version rebuild it. If those bits allow fewer than
four distinct versions (a zero or one-bit mask) only one midstate is built, because
repeating a version would make the chip find the same shares twice.
"""

from __future__ import annotations

import struct
from hashlib import sha256

from stratum_client.errors import WorkError
from stratum_client.work.extranonce import MAX_EXTRANONCE2_SIZE
from stratum_client.work.header import prevhash_to_header_order
from stratum_client.work.job import Job, Midstate, Work
from stratum_client.work.midstate import sha256_midstate
from stratum_client.work.target import nbits_to_target, validate_difficulty
from stratum_client.work.versionroll import mask_space, rolled_versions, version_bits

__all__ = ["MIDSTATE_COUNTS", "JobBuilder", "build_work"]

MIDSTATE_COUNTS = (0, 1, 4)
"""Midstates a work unit may carry: none (full-header chips), one, or four."""

_U32 = 0xFFFFFFFF
_PACK_U32 = struct.Struct("<I").pack
_PACK_TIME_BITS = struct.Struct("<II").pack


class JobBuilder:
    """Per-job precomputation; :meth:`build` makes one :class:`Work` per extranonce2."""

    __slots__ = ("_branch", "_coinb2", "_head", "_prevhash", "_time_bits", "job")

    def __init__(self, job: Job) -> None:
        _validate_job(job)
        self.job = job
        self._head = job.coinb1 + job.extranonce1
        self._coinb2 = job.coinb2
        self._branch = tuple(job.merkle_branch)
        self._prevhash = prevhash_to_header_order(job.prevhash)
        self._time_bits = _PACK_TIME_BITS(job.ntime, job.nbits)

    def coinbase(self, extranonce2: bytes) -> bytes:
        """The serialised coinbase for ``extranonce2``."""
        self._check_extranonce2(extranonce2)
        return self._head + extranonce2 + self._coinb2

    def merkle_root(self, extranonce2: bytes) -> bytes:
        """Raw merkle root for ``extranonce2``: coinbase hash folded over the branch."""
        self._check_extranonce2(extranonce2)
        node = sha256(sha256(self._head + extranonce2 + self._coinb2).digest()).digest()
        for sibling in self._branch:
            node = sha256(sha256(node + sibling).digest()).digest()
        return node

    def header_prefix(self, merkle_root: bytes, version: int, ntime: int | None = None) -> bytes:
        """The 76 header bytes before the nonce, for this job and the given root/version."""
        if len(merkle_root) != 32:
            raise WorkError(f"merkle root must be 32 bytes, got {len(merkle_root)}")
        if not 0 <= version <= _U32:
            raise WorkError(f"version {version} does not fit in 32 bits")
        time_bits = self._time_bits if ntime is None else self._ntime_bits(ntime)
        return _PACK_U32(version) + self._prevhash + merkle_root + time_bits

    def build(
        self,
        extranonce2: bytes,
        *,
        ntime: int | None = None,
        version: int | None = None,
        midstates: int = 0,
    ) -> Work:
        """One work unit; ``version`` defaults to the job's and may differ only in the mask."""
        job = self.job
        if version is None:
            version = job.version
        else:
            version_bits(job.version, version, job.version_mask)
        if ntime is None:
            ntime = job.ntime
        elif not 0 <= ntime <= _U32:
            raise WorkError(f"ntime {ntime} does not fit in 32 bits")
        root = self.merkle_root(extranonce2)
        states = self._midstates(root, version, midstates) if midstates else ()
        return Work(job, extranonce2, root, version, ntime, states)

    def _midstates(self, root: bytes, version: int, count: int) -> tuple[Midstate, ...]:
        if count not in MIDSTATE_COUNTS:
            raise WorkError(f"midstates must be one of {MIDSTATE_COUNTS}, got {count}")
        free = self.job.version_mask & ~self.job.version
        if mask_space(free) < count:
            count = 1
        tail = self._prevhash + root[:28]
        return tuple(
            Midstate(v, sha256_midstate(_PACK_U32(v) + tail))
            for v in rolled_versions(version, free, count)
        )

    def _check_extranonce2(self, extranonce2: bytes) -> None:
        if len(extranonce2) != self.job.extranonce2_size:
            raise WorkError(
                f"extranonce2 must be {self.job.extranonce2_size} bytes, got {len(extranonce2)}"
            )

    def _ntime_bits(self, ntime: int) -> bytes:
        if not 0 <= ntime <= _U32:
            raise WorkError(f"ntime {ntime} does not fit in 32 bits")
        return _PACK_TIME_BITS(ntime, self.job.nbits)


def build_work(
    job: Job,
    extranonce2: bytes,
    *,
    ntime: int | None = None,
    version: int | None = None,
    midstates: int = 0,
) -> Work:
    """One-off :meth:`JobBuilder.build`; keep a :class:`JobBuilder` per job when looping."""
    return JobBuilder(job).build(extranonce2, ntime=ntime, version=version, midstates=midstates)


def _validate_job(job: Job) -> None:
    """Reject a job whose fields cannot form a header (Jobs may be built by hand)."""
    if len(job.prevhash) != 32:
        raise WorkError(f"job {job.job_id}: prevhash must be 32 bytes, got {len(job.prevhash)}")
    for index, sibling in enumerate(job.merkle_branch):
        if len(sibling) != 32:
            raise WorkError(f"job {job.job_id}: merkle branch entry {index} is not 32 bytes")
    for name in ("version", "nbits", "ntime", "version_mask"):
        if not 0 <= getattr(job, name) <= _U32:
            raise WorkError(f"job {job.job_id}: {name} does not fit in 32 bits")
    if not 0 <= job.extranonce2_size <= MAX_EXTRANONCE2_SIZE:
        raise WorkError(f"job {job.job_id}: extranonce2 size {job.extranonce2_size} is invalid")
    nbits_to_target(job.nbits)
    validate_difficulty(job.difficulty)
