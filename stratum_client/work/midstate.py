"""SHA-256 midstates: the hash state after the first 64 header bytes.

Midstate chips (BM1397, BM1387) hash only the last 16 header bytes themselves and need
the host to supply the state after the first 64-byte block. :mod:`hashlib` cannot provide
that: it exposes digests, never the internal state words, so the compression function is
reached here by hand.

Two interchangeable paths compute it:

* OpenSSL's ``SHA256_Transform`` through :mod:`ctypes` (about 1 µs), used when libcrypto
  can be loaded and passes a known-answer check at import;
* a plain Python compression function (tens of µs), the fallback and the reference.

The result is the eight state words H0..H7 (FIPS 180-4 order), each big-endian: exactly
the :class:`~stratum_client.work.job.Midstate` contract. Chip codecs reorder it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from collections.abc import Callable

from stratum_client.errors import WorkError

__all__ = [
    "MIDSTATE_BACKEND",
    "sha256_midstate",
    "sha256_midstate_openssl",
    "sha256_midstate_python",
]

_IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip
_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)  # fmt: skip
_M32 = 0xFFFFFFFF
_BLOCK = struct.Struct(">16I")
_STATE_BE = struct.Struct(">8I")
_STATE_NATIVE = struct.Struct("=8I")
_SELF_TEST_BLOCK = bytes(range(64))


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M32


def _schedule(block: bytes) -> list[int]:
    w = list(_BLOCK.unpack(block))
    for t in range(16, 64):
        a, b = w[t - 15], w[t - 2]
        s0 = _rotr(a, 7) ^ _rotr(a, 18) ^ (a >> 3)
        s1 = _rotr(b, 17) ^ _rotr(b, 19) ^ (b >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M32)
    return w


def _compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    a, b, c, d, e, f, g, h = state
    for k, w in zip(_K, _schedule(block), strict=True):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        t1 = (h + s1 + ((e & f) ^ (~e & g)) + k + w) & _M32
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) & _M32
        a, b, c, d, e, f, g, h = (t1 + t2) & _M32, a, b, c, (d + t1) & _M32, e, f, g
    return tuple((x + y) & _M32 for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True))


def _check_block(block: bytes) -> bytes:
    if len(block) != 64:
        raise WorkError(f"a midstate needs exactly 64 bytes, got {len(block)}")
    return bytes(block)


def sha256_midstate_python(block: bytes) -> bytes:
    """Midstate of one 64-byte block in pure Python (the reference implementation)."""
    return _STATE_BE.pack(*_compress(_IV, _check_block(block)))


class _Sha256Ctx(ctypes.Structure):
    """OpenSSL's ``SHA256_CTX``: state words first, then counters and the block buffer."""

    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


def _load_openssl() -> Callable[[bytes], bytes] | None:
    """Bind ``SHA256_Transform``; None if libcrypto is absent or disagrees with Python."""
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        init, transform = lib.SHA256_Init, lib.SHA256_Transform
    except (OSError, AttributeError):
        return None
    init.argtypes = (ctypes.POINTER(_Sha256Ctx),)
    init.restype = ctypes.c_int
    transform.argtypes = (ctypes.POINTER(_Sha256Ctx), ctypes.c_char_p)
    transform.restype = None
    fresh = _Sha256Ctx()
    if init(fresh) != 1:
        return None
    initial = bytes(fresh)

    def midstate(block: bytes) -> bytes:
        """Midstate of one 64-byte block via OpenSSL (a fresh context per call)."""
        data = _check_block(block)
        ctx = _Sha256Ctx.from_buffer_copy(initial)
        transform(ctx, data)
        return _STATE_BE.pack(*_STATE_NATIVE.unpack_from(ctx))

    reference = sha256_midstate_python(_SELF_TEST_BLOCK)
    return midstate if midstate(_SELF_TEST_BLOCK) == reference else None


sha256_midstate_openssl: Callable[[bytes], bytes] | None = _load_openssl()
"""The OpenSSL path, or None when it is unavailable on this machine."""
sha256_midstate: Callable[[bytes], bytes] = sha256_midstate_openssl or sha256_midstate_python
"""Midstate of a 64-byte block as 32 bytes, H0..H7 each big-endian (fastest path)."""
MIDSTATE_BACKEND = "openssl" if sha256_midstate_openssl is not None else "python"
