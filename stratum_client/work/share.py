"""Judge a found nonce: its hash, its difficulty, and whether it is a share or a block.

Two entry points share one evaluation. :func:`check_share` starts from a job and the
submit fields (what a pool does, and what the ``share`` command shows);
:func:`check_work_nonce` starts from a :class:`Work` whose merkle root is already known,
which is what the dispatcher calls for every nonce a chip reports, so it must not
rebuild the coinbase or merkle root.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256

from stratum_client.errors import WorkError
from stratum_client.work.builder import JobBuilder
from stratum_client.work.hashing import display_hex
from stratum_client.work.header import prevhash_to_header_order
from stratum_client.work.job import Job, Work
from stratum_client.work.target import (
    DIFF1_TARGET,
    difficulty_to_target,
    nbits_to_target,
)
from stratum_client.work.versionroll import version_bits

__all__ = ["ShareResult", "check_share", "check_work_nonce"]

_U32 = 0xFFFFFFFF
_PACK_HEADER = struct.Struct("<I32s32sIII").pack


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The verdict on one (job, extranonce2, ntime, nonce, version)."""

    header: bytes
    """The 80-byte header that was hashed."""
    hash: bytes
    """dSHA256 of ``header`` in raw byte order (see :attr:`hash_hex` for display)."""
    share_difficulty: float
    meets_pool_difficulty: bool
    """The hash is at or below the target of the job's pool difficulty."""
    meets_network_target: bool
    """The hash meets the job's nbits: a block candidate, submit it at once."""
    version: int
    """Header version hashed (after rolling)."""
    version_bits: int
    """The submit's version-bits field, in the job's ``version_bits_form``."""
    ntime: int
    nonce: int

    @property
    def hash_hex(self) -> str:
        """The hash in display order (byte-reversed hex, leading zeros first)."""
        return display_hex(self.hash)


def check_share(
    job: Job, extranonce2: bytes, ntime: int, nonce: int, version: int | None = None
) -> ShareResult:
    """Rebuild the header from job and submit fields and evaluate it."""
    builder = JobBuilder(job)
    rolled = job.version if version is None else version
    bits = version_bits(job.version, rolled, job.version_mask, job.version_bits_form)
    prefix = builder.header_prefix(builder.merkle_root(extranonce2), rolled, ntime)
    _check_u32("nonce", nonce)
    header = prefix + struct.pack("<I", nonce)
    return _evaluate(job, header, version=rolled, bits=bits, ntime=ntime, nonce=nonce)


def check_work_nonce(work: Work, nonce: int, version: int | None = None) -> ShareResult:
    """Evaluate a chip's nonce for ``work`` (``version`` after chip-side rolling)."""
    job = work.job
    rolled = work.version if version is None else version
    bits = version_bits(job.version, rolled, job.version_mask, job.version_bits_form)
    _check_u32("nonce", nonce)
    _check_u32("ntime", work.ntime)
    if len(work.merkle_root) != 32:
        raise WorkError(f"merkle root must be 32 bytes, got {len(work.merkle_root)}")
    header = _PACK_HEADER(
        rolled, _header_prevhash(job.prevhash), work.merkle_root, work.ntime, job.nbits, nonce
    )
    return _evaluate(job, header, version=rolled, bits=bits, ntime=work.ntime, nonce=nonce)


def _evaluate(
    job: Job, header: bytes, *, version: int, bits: int, ntime: int, nonce: int
) -> ShareResult:
    digest = sha256(sha256(header).digest()).digest()
    value = int.from_bytes(digest, "little")
    return ShareResult(
        header=header,
        hash=digest,
        share_difficulty=DIFF1_TARGET / value if value else float("inf"),
        meets_pool_difficulty=value <= difficulty_to_target(job.difficulty),
        meets_network_target=value <= nbits_to_target(job.nbits),
        version=version,
        version_bits=bits,
        ntime=ntime,
        nonce=nonce,
    )


@lru_cache(maxsize=64)
def _header_prevhash(notify_prevhash: bytes) -> bytes:
    return prevhash_to_header_order(notify_prevhash)


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= _U32:
        raise WorkError(f"{name} {value} does not fit in 32 bits")
