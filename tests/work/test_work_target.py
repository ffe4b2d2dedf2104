"""Difficulty and target arithmetic, including hostile pool values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import WorkError
from stratum_client.work.target import (
    DIFF1_TARGET,
    MAX_TARGET,
    difficulty_to_target,
    hash_to_int,
    meets_target,
    nbits_to_target,
    network_difficulty,
    share_difficulty,
    target_to_difficulty,
)

DIFFICULTIES = st.floats(min_value=1e-6, max_value=1e15, allow_nan=False)


def test_diff1_target() -> None:
    assert DIFF1_TARGET == 0x00000000FFFF0000000000000000000000000000000000000000000000000000
    assert difficulty_to_target(1) == DIFF1_TARGET
    assert nbits_to_target(0x1D00FFFF) == DIFF1_TARGET
    assert network_difficulty(0x1D00FFFF) == 1.0


@pytest.mark.parametrize(
    ("difficulty", "target"),
    [
        (2, DIFF1_TARGET // 2),
        (1024, DIFF1_TARGET // 1024),
        (100.5, DIFF1_TARGET * 2 // 201),
        (0.5, DIFF1_TARGET * 2),
    ],
)
def test_difficulty_to_target(difficulty: float, target: int) -> None:
    assert difficulty_to_target(difficulty) == target


def test_fractional_difficulty_is_exact() -> None:
    numerator, denominator = (0.001).as_integer_ratio()
    assert difficulty_to_target(0.001) == DIFF1_TARGET * denominator // numerator
    assert difficulty_to_target(0.001) == pytest.approx(DIFF1_TARGET * 1000, rel=1e-12)


def test_tiny_difficulty_caps_at_the_largest_target() -> None:
    assert difficulty_to_target(1e-30) == MAX_TARGET


@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.001, math.nan, math.inf, -math.inf, True, "1"])
def test_hostile_difficulties_are_refused(bad: object) -> None:
    with pytest.raises(WorkError):
        difficulty_to_target(bad)  # type: ignore[arg-type]


def test_share_difficulty_of_extreme_hashes() -> None:
    assert share_difficulty(bytes(32)) == math.inf
    assert share_difficulty(bytes([0xFF] * 32)) < 1e-9
    assert share_difficulty(DIFF1_TARGET.to_bytes(32, "little")) == 1.0


def test_meets_target_boundary_is_inclusive() -> None:
    target = difficulty_to_target(512)
    assert meets_target(target.to_bytes(32, "little"), target)
    assert not meets_target((target + 1).to_bytes(32, "little"), target)
    assert hash_to_int(target.to_bytes(32, "little")) == target


@pytest.mark.parametrize(
    ("nbits", "target"),
    [
        (0x1705AE3A, 0x05AE3A << (8 * 20)),
        (0x207FFFFF, 0x7FFFFF << (8 * 29)),
        (0x03123456, 0x123456),
        (0x02123456, 0x1234),
        (0x01120000, 0x12),
    ],
)
def test_nbits_to_target(nbits: int, target: int) -> None:
    assert nbits_to_target(nbits) == target


@pytest.mark.parametrize(
    "nbits",
    [0x1D800001, 0x1D000000, 0x01003456, 0x00123456, 0x227FFFFF, 0xFF7FFFFF, -1, 1 << 32],
)
def test_invalid_nbits_are_refused(nbits: int) -> None:
    with pytest.raises(WorkError):
        nbits_to_target(nbits)


def test_regtest_difficulty_is_below_one() -> None:
    assert network_difficulty(0x207FFFFF) < 1


def test_target_to_difficulty_refuses_non_positive_targets() -> None:
    with pytest.raises(WorkError):
        target_to_difficulty(0)
    assert target_to_difficulty(DIFF1_TARGET // 4) == pytest.approx(4.0)


@given(DIFFICULTIES, DIFFICULTIES)
def test_target_falls_as_difficulty_rises(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert difficulty_to_target(low) >= difficulty_to_target(high)


@given(DIFFICULTIES)
def test_difficulty_round_trips_through_its_target(difficulty: float) -> None:
    assert target_to_difficulty(difficulty_to_target(difficulty)) == pytest.approx(
        difficulty, rel=1e-9
    )


@given(
    st.integers(min_value=1, max_value=MAX_TARGET), st.integers(min_value=1, max_value=MAX_TARGET)
)
def test_share_difficulty_falls_as_the_hash_rises(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert share_difficulty(low.to_bytes(32, "little")) >= share_difficulty(
        high.to_bytes(32, "little")
    )


@given(st.integers(min_value=1, max_value=MAX_TARGET), DIFFICULTIES)
def test_meeting_the_target_means_meeting_the_difficulty(value: int, difficulty: float) -> None:
    digest = value.to_bytes(32, "little")
    if meets_target(digest, difficulty_to_target(difficulty)):
        assert share_difficulty(digest) >= difficulty * (1 - 1e-12)
    else:
        assert share_difficulty(digest) <= difficulty * (1 + 1e-12)
