"""PLL search, frequency ramps, and the clock-derived numbers (job interval, HCN)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client_bm13xx import frames
from stratum_client_bm13xx.chips import (
    BM1366,
    BM1368,
    BM1370,
    BM1397,
    MODELS,
    ChipModel,
    full_scan_ms,
    job_interval_ms,
)
from stratum_client_bm13xx.pll import RAMP_STEP_MHZ, pll_for_frequency, ramp_plan
from stratum_client_bm13xx.registers import (
    Delay,
    Send,
    frequency_steps,
    hash_counting_number,
    ramp_steps,
)


@pytest.mark.parametrize(
    ("model", "mhz", "register"),
    [
        (BM1370, 525, "40 A8 02 30"),
        (BM1366, 485, "50 C2 02 40"),
        (BM1397, 425, "40 44 02 21"),
    ],
)
def test_documented_pll_registers(model: ChipModel, mhz: float, register: str) -> None:
    setting = pll_for_frequency(model, mhz)
    assert setting.register == bytes.fromhex(register)
    assert setting.actual_mhz == mhz


def test_reference_unit_test_450_mhz_in_range_60_200() -> None:
    assert (BM1397.fb_min, BM1397.fb_max) == (60, 200)
    s = pll_for_frequency(BM1397, 450)
    assert (s.fb, s.refdiv, s.p1, s.p2) == (72, 2, 2, 1)
    assert s.actual_mhz == pytest.approx(450.0, abs=0.01)


def test_vdo_scale_switches_at_2400_mhz_vco() -> None:
    s = pll_for_frequency(BM1366, 485)
    assert s.vco_mhz == 2425
    assert s.register[0] == 0x50
    assert pll_for_frequency(BM1370, 525).register[0] == 0x40


def test_sniffed_bm1397_200_mhz_setting_differs_but_is_the_same_frequency() -> None:
    ours = pll_for_frequency(BM1397, 200)
    assert ours.register == bytes.fromhex("40400241")
    _vdo, fb, refdiv, post = bytes.fromhex("40A00225")  # p1 2 < p2 5: outside our search
    assert 25 * fb / (refdiv * (post >> 4) * (post & 0xF)) == ours.actual_mhz == 200


@pytest.mark.parametrize("mhz", [0, -1, 1, 25, 47, 65535, math.inf, -math.inf, math.nan])
def test_unreachable_targets_raise(mhz: float) -> None:
    with pytest.raises(ValueError, match="MHz"):
        pll_for_frequency(BM1370, mhz)


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.name)
@pytest.mark.parametrize("mhz", [50, 100, 125, 327, 425, 450, 525, 690, 1000])
def test_family_settings_are_representable(model: ChipModel, mhz: float) -> None:
    s = pll_for_frequency(model, mhz)
    assert model.fb_min <= s.fb <= model.fb_max
    assert 1 <= s.refdiv <= 2
    assert 1 <= s.p2 < s.p1 <= 7
    assert s.actual_mhz == pytest.approx(25 * s.fb / (s.refdiv * s.p1 * s.p2))
    assert abs(s.actual_mhz - mhz) <= 1.0


def _decode_register(model: ChipModel, register: bytes) -> float:
    _, fb, refdiv, post = register
    offset = 1 if model.pll_post_minus_one else 0
    return 25 * fb / (refdiv * ((post >> 4) + offset) * ((post & 0xF) + offset))


@given(model=st.sampled_from(list(MODELS.values())), mhz=st.floats(50, 800))
def test_search_is_optimal_and_register_round_trips(model: ChipModel, mhz: float) -> None:
    s = pll_for_frequency(model, mhz)
    assert _decode_register(model, s.register) == pytest.approx(s.actual_mhz)
    best = min(
        abs(Fraction(mhz) - Fraction(25 * fb, r * p1 * p2))
        for r in (1, 2)
        for p1 in range(1, 8)
        for p2 in range(1, p1)
        for fb in range(model.fb_min, model.fb_max + 1)
    )
    assert abs(Fraction(mhz) - Fraction(25 * s.fb, s.refdiv * s.p1 * s.p2)) == best


# -- ramps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "plan"),
    [
        (50, 75, [56.25, 62.5, 68.75, 75]),
        (50, 60, [56.25, 60]),
        (51, 60, [56.25, 60]),
        (525, 500, [518.75, 512.5, 506.25, 500]),
        (52, 50, [50]),
        (490, 490, [490]),
    ],
)
def test_ramp_plan_examples(start: float, target: float, plan: list[float]) -> None:
    assert ramp_plan(start, target) == plan


@given(st.floats(50, 800), st.floats(50, 800))
def test_ramp_plan_moves_in_small_monotone_steps(start: float, target: float) -> None:
    plan = ramp_plan(start, target)
    assert plan[-1] == target
    path = [start, *plan]
    steps = [b - a for a, b in itertools.pairwise(path)]
    assert all(abs(s) <= RAMP_STEP_MHZ + 1e-9 for s in steps)
    assert all(s > 0 for s in steps) or all(s < 0 for s in steps) or start == target
    assert all(f / RAMP_STEP_MHZ == int(f / RAMP_STEP_MHZ) for f in plan[:-1])


def test_bm1397_frequency_write_is_prefixed_and_doubled() -> None:
    steps = frequency_steps(BM1397, 425)
    sends = [s.frame for s in steps if isinstance(s, Send)]
    divider = bytes.fromhex("55AA510900700F0F0F0019")  # sniffed
    pll = frames.write_register(0x08, bytes.fromhex("40440221"))
    assert sends == [divider, divider, pll, pll]
    assert sum(s.ms for s in steps if isinstance(s, Delay)) == 50


def test_full_header_frequency_write_is_single() -> None:
    (step,) = frequency_steps(BM1370, 525)
    assert isinstance(step, Send)
    assert step.frame == frames.write_register(0x08, bytes.fromhex("40A80230"))


def test_ramp_steps_pause_100_ms_between_writes() -> None:
    steps = ramp_steps(BM1368, 50, 75)
    assert [type(s) for s in steps] == [Send, Delay] * 4
    assert all(s.ms == 100 for s in steps if isinstance(s, Delay))


# -- clock-derived numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "chips", "version_space", "percent", "ms"),
    [
        (BM1397, 1, 4, 0.75, 27.962),
        (BM1370, 2, 65536, 0.5, 76354.974),
        (BM1370, 3, 256, 0.5, 149.131),
        (BM1370, 1, 65536, 1.0, 305419.897),
    ],
)
def test_full_scan_table(
    model: ChipModel, chips: int, version_space: int, percent: float, ms: float
) -> None:
    assert full_scan_ms(model, chips, 450, version_space, percent) == pytest.approx(ms, abs=0.01)


def test_full_scan_returns_default_without_chips_or_clock() -> None:
    assert full_scan_ms(BM1370, 0, 450, 256, 0.5, default_ms=20) == 20
    assert full_scan_ms(BM1397, 1, 0, 4) == 500


@pytest.mark.parametrize(
    ("model", "chips", "ms"),
    [
        (BM1366, 1, 2000),
        (BM1370, 1, 500),
        (BM1370, 2, 250),
        (BM1368, 6, 62.5),
        (BM1366, 3, 500),
    ],
)
def test_job_interval_of_full_header_chips(model: ChipModel, chips: int, ms: float) -> None:
    assert job_interval_ms(model, chips, 500) == ms


def test_job_interval_of_bm1397_covers_its_space() -> None:
    assert job_interval_ms(BM1397, 1, 425) == pytest.approx(39.5, abs=0.05)


def test_hash_counting_number() -> None:
    assert hash_counting_number(BM1370, 1, 525) == 798_647
    assert hash_counting_number(BM1366, 2, 485) == int(2**32 / 128 / 2 * 25 / 485 * 0.5)
    with pytest.raises(ValueError, match="no hash counting"):
        hash_counting_number(BM1397, 1, 425)
