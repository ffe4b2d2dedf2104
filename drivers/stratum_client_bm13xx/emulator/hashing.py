"""Finish a block-header hash from a midstate, the way a midstate chip (BM1397) does.

The chip receives the SHA-256 state after the header's first 64 bytes and hashes only
the last 16 (merkle tail, ntime, nbits, nonce) plus padding, then hashes the digest
again. :mod:`hashlib` cannot start from a given state, so the first half runs in
OpenSSL's ``SHA256_Update``/``SHA256_Final`` on a context whose state words are set by
hand, through :mod:`ctypes`; a plain-Python compression is the fallback. Both reuse the
context layout and compression function of :mod:`stratum_client.work.midstate`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import struct
import threading
from collections.abc import Callable

from stratum_client.work.midstate import _compress, _Sha256Ctx, sha256_midstate_python

__all__ = ["HASHING_BACKEND", "sha256d_from_midstate"]

_STATE = struct.Struct(">8I")
_TAIL_SIZE = 16
_BLOCK_BITS = 512
"""Bits already hashed when the midstate was taken (one 64-byte block)."""
_TAIL_PADDING = b"\x80" + bytes(39) + (8 * 80).to_bytes(8, "big")
"""SHA-256 padding of an 80-byte message after its last 16 bytes."""
_SELF_TEST = bytes(range(80))


def _check(state: bytes, tail16: bytes) -> None:
    if len(state) != 32 or len(tail16) != _TAIL_SIZE:
        raise ValueError(
            f"need a 32-byte midstate and a 16-byte tail, got {len(state)} and {len(tail16)}"
        )


def _finish_python(state: bytes, tail16: bytes) -> bytes:
    """Reference path: one compression of tail + padding, then the second SHA-256."""
    words = _compress(_STATE.unpack(state), tail16 + _TAIL_PADDING)
    return hashlib.sha256(_STATE.pack(*words)).digest()


def _load_openssl() -> Callable[[bytes, bytes], bytes] | None:
    """Bind ``SHA256_Update``/``SHA256_Final``; None if libcrypto is absent or disagrees."""
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        update, final = lib.SHA256_Update, lib.SHA256_Final
    except (OSError, AttributeError):
        return None
    update.argtypes = (ctypes.POINTER(_Sha256Ctx), ctypes.c_char_p, ctypes.c_size_t)
    update.restype = ctypes.c_int
    final.argtypes = (ctypes.c_char_p, ctypes.POINTER(_Sha256Ctx))
    final.restype = ctypes.c_int
    local = threading.local()  # ctypes drops the GIL: each thread needs its own output

    @functools.lru_cache(maxsize=256)
    def template(state: bytes) -> bytes:
        """A context image that has hashed one block and holds ``state`` (cached per job)."""
        ctx = _Sha256Ctx()
        ctx.h[:] = _STATE.unpack(state)
        ctx.nl, ctx.md_len = _BLOCK_BITS, 32
        return bytes(ctx)

    def finish(state: bytes, tail16: bytes) -> bytes:
        ctx = _Sha256Ctx.from_buffer_copy(template(state))
        out = getattr(local, "out", None)
        if out is None:
            out = local.out = ctypes.create_string_buffer(32)
        update(ctx, tail16, _TAIL_SIZE)
        final(out, ctx)
        return hashlib.sha256(out.raw).digest()

    state = sha256_midstate_python(_SELF_TEST[:64])
    expected = _finish_python(state, _SELF_TEST[64:])
    return finish if finish(state, _SELF_TEST[64:]) == expected else None


_finish_openssl = _load_openssl()
_finish = _finish_openssl or _finish_python
HASHING_BACKEND = "openssl" if _finish_openssl is not None else "python"
"""Which path :func:`sha256d_from_midstate` uses on this machine."""


def sha256d_from_midstate(state: bytes, tail16: bytes) -> bytes:
    """Double SHA-256 of an 80-byte header given its midstate and last 16 bytes.

    ``state`` is the state after the first 64 header bytes as H0..H7, each big-endian
    (:class:`~stratum_client.work.job.Midstate` order); the result is the raw digest,
    as :func:`stratum_client.work.hashing.dsha256` of the whole header would return.
    """
    _check(state, tail16)
    return _finish(state, tail16)
