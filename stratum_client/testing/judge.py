"""How the local pool judges one ``mining.submit``: rebuild, hash, verdict, record.

Pure code over one connection's :class:`Miner` state and the pool's jobs; the server in
:mod:`stratum_client.testing.pool` only moves the lines. Lenient rules are a careful
pool's (mask and ntime checked, the previous difficulty honoured until the next job);
strict rules are public-pool's (see :class:`~stratum_client.testing.pool.LocalPool`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from stratum_client.testing.template import (
    BlockRule,
    PoolJob,
    VersionRule,
    rebuild_header,
    rebuilt_version,
)
from stratum_client.work.hashing import dsha256
from stratum_client.work.target import nbits_to_target, share_difficulty

__all__ = ["Hashed", "Judged", "Miner", "Reject", "Rules", "SubmitRecord", "judge", "record"]

log = structlog.get_logger("stratum_client.testing.pool")

STRICT_REASONS: Final = {21: "Job not found", 22: "Duplicate share", 23: "Difficulty too low"}
"""public-pool's reject messages (eStratumErrorCode and StratumV1Client.ts)."""

_NTIME_ROLL = 7200
"""Seconds past the job's ntime a lenient pool accepts."""


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One submit and the pool's verdict (``reason`` is empty when accepted)."""

    worker: str
    job_id: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    difficulty: float
    """The share's own difficulty when accepted; 0.0 when rejected."""
    accepted: bool
    reason: str = ""
    code: int | None = None
    """The reject code (21 stale, 22 duplicate, 23 low difficulty, …); None if accepted."""
    required: float = 0.0
    """The difficulty the share was judged at (0.0 if it was refused before that)."""
    header: str = ""
    """The 80-byte header the pool rebuilt, in hex ("" if it never got that far)."""
    hash: str = ""
    """dSHA256 of ``header``, byte-reversed for display ("" likewise)."""
    block: bool = False
    """The hash meets the job's network target (accepted or not: a block candidate)."""


@dataclass(slots=True, eq=False)
class Miner:
    """State of one miner connection."""

    writer: asyncio.StreamWriter
    session_id: str = ""
    extranonce1: bytes = b""
    subscribed: bool = False
    authorized: bool = False
    worker: str = ""
    version_mask: int = 0
    difficulty: float = 1.0
    previous_difficulty: float = 1.0
    seen: set[tuple[str, ...]] = field(default_factory=set)
    suggested: bool = False
    """A suggest_difficulty was honoured (strict mode honours only the first)."""
    window_shares: int = 0
    """Shares accepted since the last vardiff step (or the connection), and their
    difficulties' sum; the window opened at ``window_start`` (monotonic seconds)."""
    window_difficulty: float = 0.0
    window_start: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Rules:
    """The pool-wide settings a verdict depends on."""

    strict: bool
    version_rule: VersionRule
    extranonce2_size: int
    block_rule: BlockRule = "difficulty"


class Reject(Exception):  # noqa: N818 - control flow inside the pool, never escapes
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Hashed:
    """A submit rebuilt into a header and hashed, with the difficulty it was judged at."""

    header: bytes
    digest: bytes
    difficulty: float
    required: float
    block: bool


class Judged(Reject):
    """A reject after the header was rebuilt and hashed."""

    def __init__(self, code: int, message: str, hashed: Hashed) -> None:
        super().__init__(code, message)
        self.hashed = hashed


def judge(
    rules: Rules,
    miner: Miner,
    jobs: Mapping[str, PoolJob],
    seen: set[tuple[str, ...]],
    params: list[Any],
) -> Hashed:
    """The hashed share if it is accepted; raises :class:`Reject` with the pool's code."""
    if len(params) not in (5, 6) or not all(isinstance(p, str) for p in params):
        raise Reject(20, "bad submit params")
    _worker, job_id, en2, ntime, nonce = params[:5]
    bits = params[5] if len(params) == 6 else "00000000"
    key = (miner.extranonce1.hex(), job_id, en2, ntime, nonce, bits)
    if rules.strict:  # public-pool remembers a submit before judging it
        if key in seen:
            raise Reject(22, "duplicate share")
        seen.add(key)
    job = jobs.get(job_id)
    if job is None:
        raise Reject(21, "job not found")
    if key in seen and not rules.strict:
        raise Reject(22, "duplicate share")
    required = (
        miner.difficulty if rules.strict else min(miner.difficulty, miner.previous_difficulty)
    )
    hashed = _hash(rules, miner, job, (en2, ntime, nonce, bits), required)
    if hashed.difficulty < required and not (hashed.block and rules.block_rule == "block"):
        raise Judged(23, f"low difficulty share ({hashed.difficulty:.6g})", hashed)
    seen.add(key)
    return hashed


def _hash(
    rules: Rules, miner: Miner, job: PoolJob, fields: tuple[str, str, str, str], required: float
) -> Hashed:
    en2, ntime, nonce, bits = fields
    try:
        en2_bytes = bytes.fromhex(en2)
        ntime_v, nonce_v, bits_v = int(ntime, 16), int(nonce, 16), int(bits, 16)
    except ValueError as exc:
        raise Reject(20, f"malformed hex: {exc}") from exc
    if len(en2_bytes) != rules.extranonce2_size:
        raise Reject(20, "wrong extranonce2 size")
    if not rules.strict:  # public-pool checks neither: stray bits just hash wrong
        if bits_v & ~miner.version_mask:
            raise Reject(20, "version bits outside the mask")
        if not job.ntime <= ntime_v <= job.ntime + _NTIME_ROLL:
            raise Reject(20, "ntime out of range")
    mask = miner.version_mask
    version = rebuilt_version(rules.version_rule, job.version, bits_v & 0xFFFFFFFF, mask)
    header = rebuild_header(job, (miner.extranonce1, en2_bytes), ntime_v, nonce_v, version)
    digest = dsha256(header)
    block = int.from_bytes(digest, "little") <= nbits_to_target(job.nbits)
    return Hashed(header, digest, share_difficulty(digest), required, block)


def record(
    miner: Miner,
    params: list[Any],
    hashed: Hashed | None,
    *,
    strict: bool,
    code: int | None = None,
    reason: str = "",
) -> SubmitRecord:
    """The verdict as a record, and (strict mode) logged with what was hashed, as ckpool's
    share log does: the header and hash settle any "why was this rejected?"."""
    text = [str(p) for p in params] + [""] * 6
    kept = SubmitRecord(
        worker=miner.worker,
        job_id=text[1],
        extranonce1=miner.extranonce1.hex(),
        extranonce2=text[2],
        ntime=text[3],
        nonce=text[4],
        version_bits=text[5] or None,
        difficulty=hashed.difficulty if hashed is not None and code is None else 0.0,
        accepted=code is None,
        reason=reason,
        code=code,
        required=0.0 if hashed is None else hashed.required,
        header="" if hashed is None else hashed.header.hex(),
        hash="" if hashed is None else hashed.digest[::-1].hex(),
        block=hashed is not None and hashed.block,
    )
    if strict and hashed is not None:
        log.info(
            "local pool share",
            worker=kept.worker,
            job_id=kept.job_id,
            version_bits=kept.version_bits,
            header=kept.header,
            hash=kept.hash,
            share_difficulty=hashed.difficulty,
            required=hashed.required,
            accepted=kept.accepted,
            code=code,
            block=kept.block,
        )
    return kept
