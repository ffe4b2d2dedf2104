"""The power model: calibrated figures, monotonicity, the budget inverse, calibration."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from stratum_client.energy import power
from stratum_client.energy.power import CHIP_POWER, DevicePower, calibrate, chip_power

# Published single-chip board figures (ASIC power, approximate): model, MHz, low W, high W.
PUBLISHED = [
    ("BM1366", 485.0, 11.0, 13.0),  # Bitaxe Ultra
    ("BM1370", 525.0, 15.0, 18.0),  # Bitaxe Gamma
    ("BM1368", 490.0, 12.0, 14.0),  # Bitaxe Supra
    ("BM1397", 200.0, 5.0, 10.0),  # Compac F, low end of its usual range
    ("BM1397", 400.0, 5.0, 10.0),  # Compac F, high end
]


def device(model: str, chips: int = 1, lo: float = 200.0, hi: float | None = None) -> DevicePower:
    chip = CHIP_POWER[model]
    return DevicePower(model.lower(), chip, chips, lo, hi or chip.default_mhz)


@pytest.mark.parametrize(("model", "mhz", "low", "high"), PUBLISHED)
def test_calibrated_to_published_figures(model: str, mhz: float, low: float, high: float) -> None:
    assert low <= device(model).watts(mhz) <= high


@pytest.mark.parametrize("model", sorted(CHIP_POWER))
def test_default_point_reproduces_the_per_chip_figure(model: str) -> None:
    chip = CHIP_POWER[model]
    assert chip.watts(chip.default_mhz) == pytest.approx(chip.watts_at_default)
    assert device(model, chips=6).watts(chip.default_mhz) == pytest.approx(
        6 * chip.watts_at_default
    )


def test_voltage_scales_dynamic_power_quadratically() -> None:
    chip = CHIP_POWER["BM1366"]
    dynamic = chip.watts_at_default - chip.static_watts
    lower = chip.watts(chip.default_mhz, mv=chip.default_mv / 2)
    assert lower == pytest.approx(chip.static_watts + dynamic / 4)


@given(
    st.sampled_from(sorted(CHIP_POWER)),
    st.floats(50, 800),
    st.floats(50, 800),
    st.integers(1, 8),
)
def test_monotonic_in_frequency(model: str, f1: float, f2: float, chips: int) -> None:
    dev = DevicePower("d", CHIP_POWER[model], chips, 50.0, 800.0)
    lo, hi = sorted((f1, f2))
    assert dev.watts(lo) <= dev.watts(hi)


def test_frequency_grid_uses_the_driver_step_and_the_maximum() -> None:
    dev = device("BM1366", lo=240.0)
    grid = dev.frequencies()
    assert grid[0] == 243.75
    assert grid[-2:] == (481.25, 485.0)
    assert all(b - a == pytest.approx(6.25) for a, b in itertools.pairwise(grid[:-1]))


@given(st.sampled_from(sorted(CHIP_POWER)), st.floats(0, 60), st.integers(1, 4))
@example("BM1368", 13.0, 1)  # watts(490 MHz) is 13 W plus float rounding
def test_budget_inverse_is_the_highest_fitting_choice(
    model: str, budget: float, chips: int
) -> None:
    dev = DevicePower("d", CHIP_POWER[model], chips, 150.0, CHIP_POWER[model].default_mhz)
    chosen = dev.max_frequency_for(budget)
    # the model allows a float-rounding tolerance at the budget edge; so does the check
    fitting = [f for f in dev.frequencies() if dev.watts(f) <= budget + power._EPSILON_W]
    assert chosen == (max(fitting) if fitting else None)


def test_budget_inverse_edges() -> None:
    dev = device("BM1370", lo=262.5)
    assert dev.max_frequency_for(dev.watts(525.0)) == 525.0
    assert dev.max_frequency_for(1000.0) == 525.0
    assert dev.max_frequency_for(dev.watts(262.5)) == 262.5
    assert dev.max_frequency_for(dev.watts(262.5) - 0.01) is None
    # 1.2 W + 0.02914 W/MHz × f: 12 W allows 370.6 MHz → 368.75 on the 6.25 grid.
    assert dev.max_frequency_for(12.0) == 368.75
    assert dev.max_frequency_for(12.0, offset_w=2.0) == 300.0


def test_overrides_and_validation() -> None:
    chip = chip_power("bm1366", static_watts=2.0, watts_at_default=15.0)
    assert chip.watts(485.0) == pytest.approx(15.0)
    assert chip.watts(0.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="static_watts"):
        chip_power("BM1366", static_watts=20.0)
    with pytest.raises(KeyError):
        chip_power("BM9999")
    with pytest.raises(ValueError, match="min_mhz"):
        DevicePower("d", chip, 1, 500.0, 485.0)


def test_calibrate_recovers_the_model_from_plug_readings() -> None:
    truth = chip_power("BM1370", static_watts=2.5, watts_at_default=19.0)
    readings = [(mhz, 2 * truth.watts(mhz)) for mhz in (300.0, 400.0, 525.0)]
    fitted = calibrate(readings, chips=2, chip=CHIP_POWER["BM1370"])
    assert fitted.static_watts == pytest.approx(2.5)
    assert fitted.watts_at_default == pytest.approx(19.0)
    with pytest.raises(ValueError, match="two or more distinct"):
        calibrate([(400.0, 10.0), (400.0, 11.0)], chips=1, chip=truth)


def test_efficiency_orders_newer_chips_first() -> None:
    gamma, ultra = device("BM1370"), device("BM1366")
    assert gamma.joules_per_terahash(525.0) < ultra.joules_per_terahash(485.0)
    assert 10 < gamma.joules_per_terahash(525.0) < 25
