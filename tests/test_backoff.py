"""The one Backoff: each jitter mode against its sequence written out by hand."""

from __future__ import annotations

import itertools
import random

import pytest

from stratum_client.backoff import Backoff


def first(backoff: Backoff, n: int) -> list[float]:
    return list(itertools.islice(backoff.delays(), n))


def test_no_jitter_doubles_up_to_the_cap_and_reset_starts_over() -> None:
    backoff = Backoff(0.1, 1.0, jitter="none")
    assert first(backoff, 6) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)


def test_equal_jitter_draws_from_the_upper_half_of_each_step() -> None:
    draws = iter([0.0, 1.0 - 1e-12, 0.5, 0.0, 0.0])
    backoff = Backoff(1.0, 4.0, random=lambda: next(draws))
    assert first(backoff, 5) == pytest.approx([0.5, 2.0, 3.0, 2.0, 2.0])


def test_equal_jitter_stays_within_half_to_whole_step() -> None:
    backoff = Backoff(1.0, 60.0, random=random.Random(5).random)
    steps = [min(2.0**k, 60.0) for k in range(12)]
    for step, pause in zip(steps, first(backoff, 12), strict=True):
        assert step / 2 <= pause <= step


def test_decorrelated_jitter_matches_uniform_between_base_and_three_times_the_last() -> None:
    seed = 11
    backoff = Backoff(1.0, 30.0, jitter="decorrelated", random=random.Random(seed).random)
    rng, last, expected = random.Random(seed), 0.0, []
    for _ in range(20):
        last = min(30.0, rng.uniform(1.0, max(1.0, last * 3.0)))
        expected.append(last)
    assert first(backoff, 20) == pytest.approx(expected)
    assert max(expected) <= 30.0


def test_factor_other_than_two() -> None:
    assert first(Backoff(1.0, 100.0, jitter="none", factor=3.0), 4) == [1.0, 3.0, 9.0, 27.0]


@pytest.mark.parametrize(
    ("initial", "maximum", "factor", "words"),
    [
        (0.0, 1.0, 2.0, "initial delay must be positive"),
        (float("nan"), 1.0, 2.0, "initial delay must be positive"),
        (2.0, 1.0, 2.0, "must be finite and at least"),
        (1.0, float("inf"), 2.0, "must be finite and at least"),
        (1.0, 2.0, 0.5, "factor must be at least 1"),
    ],
)
def test_nonsense_parameters_are_refused(
    initial: float, maximum: float, factor: float, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Backoff(initial, maximum, factor=factor)
