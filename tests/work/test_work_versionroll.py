"""BIP310 version rolling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import WorkError
from stratum_client.work.versionroll import (
    apply_version_bits,
    increment_within_mask,
    mask_space,
    rolled_versions,
    version_bits,
)

U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


def test_bip320_mask_rolls_from_bit_13() -> None:
    assert rolled_versions(0x20000000, 0x1FFFE000, 4) == (
        0x20000000,
        0x20002000,
        0x20004000,
        0x20006000,
    )


def test_increment_wraps_inside_the_mask() -> None:
    assert increment_within_mask(0x3FFFE004, 0x1FFFE000) == 0x20000004
    assert increment_within_mask(0x20000004, 0) == 0x20000004


def test_chip_side_rolling_decodes_to_the_submitted_bits() -> None:
    """BM1366 family: rolled = job.version | (v16 << 13); 'Ver 240D0000' submits 040d0000."""
    job_version = 0x20000000
    rolled = job_version | (0x2068 << 13)
    assert rolled == 0x240D0000
    assert f"{version_bits(job_version, rolled, 0x1FFFE000):08x}" == "040d0000"


def test_apply_and_extract_are_inverse() -> None:
    rolled = apply_version_bits(0x20000004, 0x00002000, 0x1FFFE000)
    assert rolled == 0x20002004
    assert version_bits(0x20000004, rolled, 0x1FFFE000) == 0x00002000


def test_replace_form_submits_mask_values_not_a_difference() -> None:
    """A job version with a mask bit already set: BIP310's replace formula needs the value,
    not the XOR, so the replace form sends the value."""
    job_version, mask = 0x20002000, 0x1FFFE000
    rolled = increment_within_mask(job_version, mask)
    assert rolled == 0x20004000
    bits = version_bits(job_version, rolled, mask, "replace")
    assert bits == 0x00004000
    assert bits != (rolled ^ job_version)
    assert apply_version_bits(job_version, bits, mask, "replace") == rolled


def test_xor_form_submits_the_difference() -> None:
    """The default form is ESP-Miner's ``rolled ^ job``: what an XOR pool needs back."""
    job_version, mask = 0x20002000, 0x1FFFE000
    rolled = increment_within_mask(job_version, mask)
    bits = version_bits(job_version, rolled, mask)
    assert bits == 0x00006000 == rolled ^ job_version
    assert apply_version_bits(job_version, bits, mask) == rolled


def test_an_unknown_form_is_refused() -> None:
    with pytest.raises(WorkError, match="'or' is not one of xor, replace"):
        version_bits(0x20000000, 0x20002000, 0x1FFFE000, "or")  # type: ignore[arg-type]
    with pytest.raises(WorkError, match="not one of"):
        apply_version_bits(0x20000000, 0x2000, 0x1FFFE000, "")  # type: ignore[arg-type]


def test_bits_outside_the_mask_are_refused() -> None:
    with pytest.raises(WorkError, match="outside the mask"):
        apply_version_bits(0x20000000, 0x00001000, 0x1FFFE000)
    with pytest.raises(WorkError, match="outside the mask"):
        version_bits(0x20000000, 0x20001000, 0x1FFFE000)


def test_values_beyond_32_bits_are_refused() -> None:
    with pytest.raises(WorkError, match="32 bits"):
        increment_within_mask(1 << 32, 0x1FFFE000)
    with pytest.raises(WorkError, match="32 bits"):
        mask_space(-1)


def test_mask_space() -> None:
    assert mask_space(0) == 1
    assert mask_space(0x1FFFE000) == 65536


@given(U32, U32)
def test_increment_never_touches_bits_outside_the_mask(version: int, mask: int) -> None:
    rolled = increment_within_mask(version, mask)
    assert rolled & ~mask == version & ~mask
    assert 0 <= rolled <= 0xFFFFFFFF


@given(U32, U32, U32)
def test_applied_bits_stay_inside_the_mask(version: int, bits: int, mask: int) -> None:
    rolled = apply_version_bits(version, bits & mask, mask)
    assert rolled & ~mask & 0xFFFFFFFF == version & ~mask & 0xFFFFFFFF
    assert apply_version_bits(version, version_bits(version, rolled, mask), mask) == rolled


@given(U32, U32.filter(lambda m: m.bit_count() >= 2))
def test_four_rolled_versions_are_distinct(version: int, mask: int) -> None:
    assert len(set(rolled_versions(version, mask, 4))) == 4
