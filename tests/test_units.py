"""Hashrates in fixed units keep small miners visible and big ones at the usual precision."""

from __future__ import annotations

import math

import pytest

from stratum_client.units import GIGA, MEGA, in_unit


@pytest.mark.parametrize(
    ("hps", "unit", "digits", "expected"),
    [
        (693_210.0, GIGA, 3, 0.0006932),  # an emulated chain: 3 decimals would say 0.0
        (693_210.0, MEGA, 2, 0.6932),
        (512_345_678.0, MEGA, 2, 512.35),  # big enough: the usual two decimals
        (1.234_567e12, GIGA, 2, 1234.57),
        (1.234_567e12, GIGA, 3, 1234.567),
        (-4_321.0, MEGA, 2, -0.004321),
        (0.0, GIGA, 2, 0.0),
    ],
)
def test_in_unit_keeps_four_significant_figures(
    hps: float, unit: float, digits: int, expected: float
) -> None:
    assert in_unit(hps, unit, digits) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_in_unit_reads_non_finite_as_zero(bad: float) -> None:
    assert in_unit(bad, GIGA) == 0.0
