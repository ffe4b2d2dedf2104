"""Targets and difficulties: pool share difficulty, network nbits and hash difficulty.

A hash "meets" a target when, read as a little-endian 256-bit integer, it is at most the
target. Difficulty is the ratio of the difficulty-1 target to a target, so the same test
can be phrased either way; comparisons here use exact integers so a share exactly at the
pool difficulty is never lost to float rounding. Pool input is hostile: a zero, negative,
NaN or infinite difficulty, or an nbits that encodes no valid target, is a
:class:`~stratum_client.errors.WorkError`, never a silent "everything passes".
"""

from __future__ import annotations

import math
from functools import lru_cache

from stratum_client.errors import WorkError

__all__ = [
    "DIFF1_TARGET",
    "MAX_TARGET",
    "difficulty_to_target",
    "hash_to_int",
    "meets_target",
    "nbits_to_target",
    "network_difficulty",
    "share_difficulty",
    "target_to_difficulty",
    "validate_difficulty",
]

DIFF1_TARGET = 0xFFFF << 208
"""The difficulty-1 target (the "pool" convention, nbits 0x1d00ffff)."""
MAX_TARGET = (1 << 256) - 1


def hash_to_int(digest: bytes) -> int:
    """A raw dSHA256 digest as the integer compared against targets (little-endian)."""
    return int.from_bytes(digest, "little")


def share_difficulty(digest: bytes) -> float:
    """Difficulty of a raw header hash: ``DIFF1_TARGET / hash``; a zero hash is infinite."""
    value = int.from_bytes(digest, "little")
    return math.inf if value == 0 else DIFF1_TARGET / value


def meets_target(digest: bytes, target: int) -> bool:
    """True when the raw header hash is at or below ``target``."""
    return int.from_bytes(digest, "little") <= target


def validate_difficulty(difficulty: float) -> float:
    """Return ``difficulty`` as a float if it is finite and positive, else raise WorkError."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
        raise WorkError(f"difficulty must be a number, got {difficulty!r}")
    value = float(difficulty)
    if not math.isfinite(value) or value <= 0.0:
        raise WorkError(f"difficulty must be finite and positive, got {difficulty!r}")
    return value


def difficulty_to_target(difficulty: float) -> int:
    """The largest hash integer meeting ``difficulty``: ``floor(DIFF1_TARGET / difficulty)``.

    Fractional difficulties (0.001, 100.5) are exact: the float's binary fraction is used,
    and the result is capped at 2**256 - 1.
    """
    return _target_for(validate_difficulty(difficulty))


@lru_cache(maxsize=64)
def _target_for(difficulty: float) -> int:
    numerator, denominator = difficulty.as_integer_ratio()
    return min(DIFF1_TARGET * denominator // numerator, MAX_TARGET)


def target_to_difficulty(target: int) -> float:
    """Difficulty of a target: ``DIFF1_TARGET / target``."""
    if target <= 0:
        raise WorkError(f"target must be positive, got {target}")
    return DIFF1_TARGET / target


@lru_cache(maxsize=64)
def nbits_to_target(nbits: int) -> int:
    """Decode the compact ``nbits`` form (``mantissa × 256**(exponent − 3)``).

    Negative, zero and overflowing encodings are rejected: no real block has them, and
    accepting one would make every hash or no hash a block.
    """
    if not 0 <= nbits <= 0xFFFFFFFF:
        raise WorkError(f"nbits {nbits} does not fit in 32 bits")
    exponent, mantissa = nbits >> 24, nbits & 0x007FFFFF
    if nbits & 0x00800000 and mantissa:
        raise WorkError(f"nbits {nbits:08x} encodes a negative target")
    shift = 8 * (exponent - 3)
    target = mantissa << shift if shift >= 0 else mantissa >> -shift
    if target == 0:
        raise WorkError(f"nbits {nbits:08x} encodes a zero target")
    if target > MAX_TARGET:
        raise WorkError(f"nbits {nbits:08x} encodes a target above 2**256")
    return target


def network_difficulty(nbits: int) -> float:
    """Network difficulty of ``nbits`` (what explorers show for a block)."""
    return DIFF1_TARGET / nbits_to_target(nbits)
