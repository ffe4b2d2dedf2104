"""The 80-byte block header, assembled from Stratum fields.

Stratum transmits integers as big-endian hex and the previous block hash with each 4-byte
word byte-swapped; the header wants little-endian integers and the plain hash bytes. The
functions here are the single place those conversions happen. ``header_prefix`` exists
because a work unit's first 76 bytes never change while a chip searches nonces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stratum_client.errors import WorkError

__all__ = [
    "HEADER_PREFIX_SIZE",
    "HEADER_SIZE",
    "HeaderFields",
    "build_header",
    "header_order_to_prevhash",
    "header_prefix",
    "header_with_nonce",
    "parse_header",
    "prevhash_to_header_order",
    "swap_words",
]

HEADER_SIZE = 80
HEADER_PREFIX_SIZE = 76
"""Everything but the nonce."""

_U32_MAX = 0xFFFFFFFF
_PREFIX = struct.Struct("<I32s32sII")
_NONCE = struct.Struct("<I")
_SWAP8_IN = struct.Struct(">8I")
_SWAP8_OUT = struct.Struct("<8I")


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """A header split back into Stratum's terms (prevhash in notify order)."""

    version: int
    prevhash: bytes
    merkle_root: bytes
    ntime: int
    nbits: int
    nonce: int


def swap_words(data: bytes) -> bytes:
    """Reverse the bytes inside each 4-byte word (its own inverse)."""
    if len(data) % 4:
        raise WorkError(f"word swap needs a multiple of 4 bytes, got {len(data)}")
    if len(data) == 32:
        return _SWAP8_OUT.pack(*_SWAP8_IN.unpack(data))
    words = len(data) // 4
    return struct.pack(f"<{words}I", *struct.unpack(f">{words}I", data))


def prevhash_to_header_order(notify_prevhash: bytes) -> bytes:
    """Turn the 32 bytes a notify's prevhash hex decodes to into the header's bytes."""
    _require_len("prevhash", notify_prevhash, 32)
    return swap_words(notify_prevhash)


def header_order_to_prevhash(header_prevhash: bytes) -> bytes:
    """The inverse of :func:`prevhash_to_header_order` (the same word swap)."""
    _require_len("prevhash", header_prevhash, 32)
    return swap_words(header_prevhash)


def header_prefix(
    version: int, header_prevhash: bytes, merkle_root: bytes, ntime: int, nbits: int
) -> bytes:
    """The first 76 header bytes; ``header_prevhash`` is already in header order."""
    _require_len("prevhash", header_prevhash, 32)
    _require_len("merkle root", merkle_root, 32)
    _require_u32("version", version)
    _require_u32("ntime", ntime)
    _require_u32("nbits", nbits)
    return _PREFIX.pack(version, header_prevhash, merkle_root, ntime, nbits)


def header_with_nonce(prefix: bytes, nonce: int) -> bytes:
    """Complete a 76-byte prefix with a nonce (little-endian, as chips report it)."""
    _require_len("header prefix", prefix, HEADER_PREFIX_SIZE)
    _require_u32("nonce", nonce)
    return prefix + _NONCE.pack(nonce)


def build_header(  # noqa: PLR0917 - one parameter per header field, in header order
    version: int, notify_prevhash: bytes, merkle_root: bytes, ntime: int, nbits: int, nonce: int
) -> bytes:
    """The full 80-byte header from Stratum-order fields (inverse of :func:`parse_header`)."""
    prevhash = prevhash_to_header_order(notify_prevhash)
    return header_with_nonce(header_prefix(version, prevhash, merkle_root, ntime, nbits), nonce)


def parse_header(header: bytes) -> HeaderFields:
    """Split an 80-byte header into fields, prevhash converted back to notify order."""
    _require_len("header", header, HEADER_SIZE)
    version, prevhash, root, ntime, nbits = _PREFIX.unpack_from(header)
    (nonce,) = _NONCE.unpack_from(header, HEADER_PREFIX_SIZE)
    return HeaderFields(version, swap_words(prevhash), root, ntime, nbits, nonce)


def _require_len(name: str, data: bytes, size: int) -> None:
    if len(data) != size:
        raise WorkError(f"{name} must be {size} bytes, got {len(data)}")


def _require_u32(name: str, value: int) -> None:
    if not 0 <= value <= _U32_MAX:
        raise WorkError(f"{name} {value} does not fit in 32 bits")
