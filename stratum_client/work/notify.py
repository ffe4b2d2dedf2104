"""Validate ``mining.notify`` params into a :class:`~stratum_client.work.job.Job`.

Everything a pool sends is untrusted: a wrong type, odd-length hex or an absurd size must
become an :class:`~stratum_client.errors.InputError` naming the offending field
(``notify.prevhash``, ``notify.merkle_branch[3]``), never a crash deeper in the miner or
work that silently hashes garbage. Sizes are capped so one message cannot exhaust memory.

Params, in order: ``job_id, prevhash, coinb1, coinb2, merkle_branch, version, nbits,
ntime, …, clean_jobs``; ``clean_jobs`` is always the *last* element, so pools that insert
extra params before it are accepted.
"""

from __future__ import annotations

import math

from stratum_client.errors import InputError, WorkError
from stratum_client.work.extranonce import MAX_EXTRANONCE2_SIZE
from stratum_client.work.job import Job
from stratum_client.work.target import nbits_to_target
from stratum_client.work.versionroll import DEFAULT_VERSION_BITS_FORM, VersionBitsForm

__all__ = [
    "MAX_COINBASE_BYTES",
    "MAX_JOB_ID_LENGTH",
    "MAX_MERKLE_BRANCHES",
    "parse_hex",
    "parse_hex_u32",
    "parse_notify",
]

MAX_MERKLE_BRANCHES = 64
"""2**64 transactions: far beyond any block; more is an attack or a bug."""
MAX_COINBASE_BYTES = 100_000
"""Cap on coinb1 + coinb2 (a block is at most 4 MB, a sane coinbase a few hundred bytes)."""
MAX_JOB_ID_LENGTH = 128
MAX_EXTRANONCE1_SIZE = 32
_MIN_PARAMS = 9


def parse_hex(
    field: str, value: object, *, size: int | None = None, max_size: int | None = None
) -> bytes:
    """Decode a hex string, requiring exactly ``size`` or at most ``max_size`` bytes.

    Only plain hex digits are accepted (no ``0x``, spaces or signs), unlike
    :meth:`bytes.fromhex` and :func:`int`, which tolerate some of those.
    """
    if not isinstance(value, str):
        raise InputError(field, f"expected a hex string, got {type(value).__name__}")
    if size is not None and len(value) != 2 * size:
        raise InputError(field, f"expected {2 * size} hex digits, got {len(value)}")
    if max_size is not None and len(value) > 2 * max_size:
        raise InputError(field, f"longer than {max_size} bytes")
    if len(value) % 2:
        raise InputError(field, f"odd number of hex digits ({len(value)})")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        data = b""
    # fromhex skips whitespace between bytes, so a short result means it saw some.
    if 2 * len(data) != len(value):
        raise InputError(field, "not a hex string")
    return data


def parse_hex_u32(field: str, value: object) -> int:
    """Decode exactly 8 hex digits as a big-endian 32-bit integer (Stratum's spelling)."""
    return int.from_bytes(parse_hex(field, value, size=4), "big")


def parse_notify(
    params: list[object],
    *,
    extranonce1: bytes,
    extranonce2_size: int,
    difficulty: float,
    version_mask: int,
    received_at: float = 0.0,
    version_bits_form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM,
) -> Job:
    """Validate notify ``params`` plus the session context into a :class:`Job`."""
    _check_context(extranonce1, extranonce2_size, difficulty, version_mask)
    if not isinstance(params, list):
        raise InputError("notify", f"params must be a JSON array, got {type(params).__name__}")
    if len(params) < _MIN_PARAMS:
        raise InputError("notify", f"expected at least {_MIN_PARAMS} params, got {len(params)}")
    coinb1, coinb2 = _coinbase_halves(params[2], params[3])
    return Job(
        job_id=_job_id(params[0]),
        prevhash=parse_hex("notify.prevhash", params[1], size=32),
        coinb1=coinb1,
        coinb2=coinb2,
        merkle_branch=_merkle_branch(params[4]),
        version=parse_hex_u32("notify.version", params[5]),
        nbits=_nbits(params[6]),
        ntime=parse_hex_u32("notify.ntime", params[7]),
        clean_jobs=_clean_jobs(params[-1]),
        extranonce1=bytes(extranonce1),
        extranonce2_size=extranonce2_size,
        difficulty=float(difficulty),
        version_mask=version_mask,
        version_bits_form=version_bits_form,
        received_at=received_at,
    )


def _check_context(
    extranonce1: bytes, extranonce2_size: int, difficulty: float, version_mask: int
) -> None:
    if not isinstance(extranonce1, bytes | bytearray) or len(extranonce1) > MAX_EXTRANONCE1_SIZE:
        raise InputError("extranonce1", f"expected at most {MAX_EXTRANONCE1_SIZE} bytes")
    if not _is_int(extranonce2_size) or not 0 <= extranonce2_size <= MAX_EXTRANONCE2_SIZE:
        raise InputError("extranonce2_size", f"expected 0..{MAX_EXTRANONCE2_SIZE}")
    number = isinstance(difficulty, int | float) and not isinstance(difficulty, bool)
    if not number or not math.isfinite(difficulty) or difficulty <= 0:
        raise InputError("difficulty", f"expected a finite positive number, got {difficulty!r}")
    if not _is_int(version_mask) or not 0 <= version_mask <= 0xFFFFFFFF:
        raise InputError("version_mask", "expected a 32-bit unsigned integer")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _job_id(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("notify.job_id", f"expected a string, got {type(value).__name__}")
    if not 0 < len(value) <= MAX_JOB_ID_LENGTH:
        raise InputError("notify.job_id", f"expected 1..{MAX_JOB_ID_LENGTH} characters")
    return value


def _coinbase_halves(first: object, second: object) -> tuple[bytes, bytes]:
    coinb1 = parse_hex("notify.coinb1", first, max_size=MAX_COINBASE_BYTES)
    coinb2 = parse_hex("notify.coinb2", second, max_size=MAX_COINBASE_BYTES)
    if len(coinb1) + len(coinb2) > MAX_COINBASE_BYTES:
        raise InputError("notify.coinb2", f"coinb1 + coinb2 exceed {MAX_COINBASE_BYTES} bytes")
    return coinb1, coinb2


def _merkle_branch(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise InputError("notify.merkle_branch", f"expected an array, got {type(value).__name__}")
    if len(value) > MAX_MERKLE_BRANCHES:
        raise InputError(
            "notify.merkle_branch", f"{len(value)} entries exceed the cap {MAX_MERKLE_BRANCHES}"
        )
    branch = []
    for index, entry in enumerate(value):
        try:
            node = bytes.fromhex(entry)  # the common case, without building a field name
        except (TypeError, ValueError):
            node = b""
        if len(node) != 32 or len(entry) != 64:
            node = parse_hex(f"notify.merkle_branch[{index}]", entry, size=32)
        branch.append(node)
    return tuple(branch)


def _nbits(value: object) -> int:
    nbits = parse_hex_u32("notify.nbits", value)
    try:
        nbits_to_target(nbits)
    except WorkError as exc:
        raise InputError("notify.nbits", str(exc)) from exc
    return nbits


def _clean_jobs(value: object) -> bool:
    if not isinstance(value, bool):
        raise InputError("notify.clean_jobs", f"expected true or false, got {value!r:.40}")
    return value
