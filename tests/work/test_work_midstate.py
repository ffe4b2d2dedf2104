"""Both midstate paths agree with each other and with hashlib."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import WorkError
from stratum_client.work import midstate
from stratum_client.work.midstate import (
    MIDSTATE_BACKEND,
    sha256_midstate,
    sha256_midstate_openssl,
    sha256_midstate_python,
)

T2_HEADER = bytes.fromhex(
    "040000204595850c738349a3fa5274a511b72ec265a4f23d5243050000000000000000005bdc1968499c3393"
    "873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778ebb52570643aae0517d19e020a"
)
T2_FIRST_64 = T2_HEADER[:64]
T2_MIDSTATE = "acd5e4b16adbd0cdbedcec318f5deb700b4c5f48b4111603c83e689946a9a88f"
BLOCKS = st.binary(min_size=64, max_size=64)


def _final_block_for_64_byte_message() -> bytes:
    """SHA-256 padding of a 64-byte message: 0x80, zeros, bit length 512 big-endian."""
    return b"\x80" + bytes(55) + struct.pack(">Q", 512)


def test_python_path_matches_the_t2_vector() -> None:
    assert sha256_midstate_python(T2_FIRST_64).hex() == T2_MIDSTATE


def test_default_path_matches_the_t2_vector() -> None:
    assert sha256_midstate(T2_FIRST_64).hex() == T2_MIDSTATE
    assert MIDSTATE_BACKEND in {"openssl", "python"}


def test_openssl_path_matches_the_t2_vector() -> None:
    if sha256_midstate_openssl is None:
        pytest.skip("libcrypto is not available here")
    assert sha256_midstate_openssl(T2_FIRST_64).hex() == T2_MIDSTATE
    assert MIDSTATE_BACKEND == "openssl"


@given(BLOCKS)
def test_both_paths_agree(block: bytes) -> None:
    if sha256_midstate_openssl is None:
        pytest.skip("libcrypto is not available here")
    assert sha256_midstate_openssl(block) == sha256_midstate_python(block)


@given(BLOCKS)
def test_midstate_then_padding_block_is_hashlib_sha256(block: bytes) -> None:
    """Finishing our state by hand must give hashlib's digest: an independent check."""
    state = struct.unpack(">8I", sha256_midstate(block))
    final = midstate._compress(state, _final_block_for_64_byte_message())
    assert struct.pack(">8I", *final) == hashlib.sha256(block).digest()


@pytest.mark.parametrize("size", [0, 63, 65, 80])
def test_wrong_block_size_is_refused(size: int) -> None:
    with pytest.raises(WorkError, match="64 bytes"):
        sha256_midstate_python(bytes(size))
    with pytest.raises(WorkError, match="64 bytes"):
        sha256_midstate(bytes(size))


def test_bytearray_input_is_accepted() -> None:
    assert sha256_midstate(bytearray(T2_FIRST_64)).hex() == T2_MIDSTATE  # type: ignore[arg-type]
