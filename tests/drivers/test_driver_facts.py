"""Chip facts published by the built-in driver classes, as the daemon reads them.

Expected values are the chips' published figures (ESP-Miner's per-model core counts and
defaults; the power table in ``stratum_client_bm13xx.chips``), not read back from the
code under test, and they are reached the way the daemon reaches them: by model name
through the registry.
"""

from __future__ import annotations

import pytest

from stratum_client.asic.registry import chip_facts, load_driver
from stratum_client.energy.power import CHIP_POWER, chip_power
from stratum_client.errors import DriverError

PUBLISHED = {
    # model: (cores, small cores, default MHz, default mV, static W, W at default)
    "BM1366": (112, 894, 485.0, 1200, 1.0, 12.0),
    "BM1368": (80, 1276, 490.0, 1166, 1.0, 13.0),
    "BM1370": (128, 2040, 525.0, 1150, 1.2, 16.5),
    "BM1397": (168, 672, 425.0, 1400, 0.6, 10.0),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_each_builtin_driver_publishes_its_chip_facts(model: str) -> None:
    cls = load_driver(model.lower())
    facts = chip_facts(model.lower())
    assert facts is not None
    assert facts is cls.facts
    assert cls.model == facts.model == model
    figures = (facts.cores, facts.small_cores, facts.default_mhz, facts.default_mv)
    assert figures == PUBLISHED[model][:4]
    assert (facts.static_watts, facts.watts_at_default) == PUBLISHED[model][4:]
    assert facts.ramp_step_mhz == 6.25
    power = CHIP_POWER[model]
    assert power.watts(facts.default_mhz) == pytest.approx(PUBLISHED[model][5])


def test_power_models_come_from_the_installed_drivers() -> None:
    assert set(PUBLISHED) <= set(CHIP_POWER)
    with pytest.raises(KeyError):
        chip_power("BM9999")
    assert chip_facts("BM9999") is None


def test_reachable_frequency_is_the_pll_step_and_out_of_range_is_refused() -> None:
    cls = load_driver("bm1366")
    assert cls.reachable_mhz(485.0) == pytest.approx(485.0, abs=0.5)
    assert cls.reachable_mhz(400.0) != cls.reachable_mhz(450.0)
    with pytest.raises(DriverError):
        cls.reachable_mhz(5000.0)
