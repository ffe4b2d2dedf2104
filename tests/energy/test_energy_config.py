"""The ``[energy]`` schema: a full example, defaults, and errors naming the dotted key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from stratum_client.energy.config import parse_energy
from stratum_client.energy.power import CHIP_POWER
from stratum_client.energy.signals import SignalBoard
from stratum_client.errors import ConfigError

EXAMPLE = """
mode = ["surplus", "carbon"]
fail_safe = "hold-last"
control_interval = 0.5
min_dwell = 600

[surplus]
margin_w = 8
reserve_w = 20
net_of_miner = true

[carbon]
max_intensity = 250
margin = 30

[signals.surplus]
topic = "homeassistant/sensor/grid_power/state"
scale = 1000
invert = true
max_age = 120

[signals.carbon_intensity]
topic = "homeassistant/sensor/electricity_maps_co2_intensity/state"
max_age = 3600

[devices.gamma]
watts_per_chip_at_default = 18.0
static_watts = 1.5
min_frequency_mhz = 300
power = { topic = "shellies/plug-gamma/status/switch:0", path = "$.apower", max_age = 30 }

[ledger]
path = "ledger/energy.sqlite"
interval = 30
surplus_g_per_kwh = 41
"""


def test_full_example() -> None:
    energy = parse_energy(tomllib.loads(EXAMPLE), device_names=["gamma", "ultra"])
    assert energy.enabled
    policy = energy.policy
    assert policy.modes == ("surplus", "carbon")
    assert policy.label == "surplus+carbon"
    assert (policy.fail_safe, policy.control_interval, policy.min_dwell) == ("hold-last", 0.5, 600)
    assert (policy.surplus.margin_w, policy.surplus.reserve_w) == (8.0, 20.0)
    assert policy.carbon is not None
    assert (policy.carbon.threshold, policy.carbon.margin) == (250.0, 30.0)
    assert policy.price is None
    names = [s.name for s in energy.signals]
    assert names == ["surplus", "carbon_intensity", "power.gamma"]
    surplus = energy.signals[0]
    assert (surplus.scale, surplus.invert, surplus.max_age) == (1000.0, True, 120.0)
    assert energy.signals[2].path == ("apower",)
    assert energy.power_signals == {"gamma": "power.gamma"}
    assert SignalBoard(energy.signals).topics()[0] == "homeassistant/sensor/grid_power/state"
    gamma = energy.device_power("gamma", "BM1370", 1, None)
    assert gamma.watts(525.0) == pytest.approx(18.0)
    assert (gamma.min_mhz, gamma.max_mhz) == (300.0, 525.0)
    ultra = energy.device_power("ultra", "BM1366", 1, 450.0)
    assert (ultra.min_mhz, ultra.max_mhz) == (225.0, 450.0)
    assert ultra.chip == CHIP_POWER["BM1366"]
    ledger = energy.ledger
    assert ledger.resolve_path(Path("/var/lib/x")) == Path("/var/lib/x/ledger/energy.sqlite")
    assert (ledger.interval, ledger.surplus_g_per_kwh) == (30.0, 41.0)


def test_absent_table_means_off_and_minimal_table_means_accounting() -> None:
    off = parse_energy({})
    assert not off.enabled
    assert off.policy.modes == ("always",)
    assert off.ledger.resolve_path(Path("/s")) == Path("/s/energy-ledger.sqlite")
    accounting = parse_energy({"ledger": {"interval": 60}})
    assert accounting.enabled
    assert accounting.policy.modes == ("always",)
    assert not parse_energy({"enabled": False, "mode": "always"}).enabled


def test_single_mode_string_and_price_margin_default() -> None:
    energy = parse_energy(
        {"mode": "price", "price": {"max_price": 0.3}, "signals": {"price": {"topic": "p"}}}
    )
    assert energy.policy.modes == ("price",)
    assert energy.policy.price is not None
    assert energy.policy.price.margin == pytest.approx(0.015)


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"mode": "sunny"}, "energy.mode", "'sunny' is not a mode"),
        ({"mode": ["always", "carbon"]}, "energy.mode", "'always' cannot be combined"),
        ({"mode": ["price", "price"]}, "energy.mode", "list each mode once"),
        ({"mode": []}, "energy.mode", "not a mode or a list"),
        ({"modes": "surplus"}, "energy.modes", "did you mean 'mode'?"),
        ({"fail_safe": "panic"}, "energy.fail_safe", "is not one of pause, run, hold-last"),
        ({"control_interval": 0}, "energy.control_interval", "out of range"),
        ({"control_interval": 5}, "energy.control_interval", "within 2 s"),
        ({"min_dwell": -1}, "energy.min_dwell", "out of range"),
        ({"min_dwell": "5m"}, "energy.min_dwell", "is not a number"),
        ({"mode": "surplus"}, "energy.signals.surplus", "mode 'surplus' needs"),
        (
            {"mode": "carbon", "signals": {"carbon_intensity": {"topic": "c"}}},
            "energy.carbon.max_intensity",
            "is missing",
        ),
        (
            {"mode": "carbon", "carbon": {"max_intensity": 200}},
            "energy.signals.carbon_intensity",
            "mode 'carbon' needs it",
        ),
        ({"signals": {"solar": {"topic": "x"}}}, "energy.signals.solar", "unknown key"),
        ({"signals": {"surplus": {}}}, "energy.signals.surplus.topic", "is missing"),
        ({"signals": {"surplus": {"topic": "a/#"}}}, "energy.signals.surplus.topic", "wildcard"),
        (
            {"signals": {"surplus": {"topic": "a", "path": "$.a["}}},
            "energy.signals.surplus.path",
            "cannot parse",
        ),
        ({"signals": {"surplus": {"topic": "a", "scale": 0}}}, "energy.signals.surplus.scale", "0"),
        (
            {"signals": {"surplus": {"topic": "a", "max_age": 0}}},
            "energy.signals.surplus.max_age",
            "expected a number > 0",
        ),
        (
            {"signals": {"surplus": {"topic": "a", "invert": "yes"}}},
            "energy.signals.surplus.invert",
            "expected true or false",
        ),
        ({"devices": {"nope": {}}}, "energy.devices.nope", "no [[devices]] entry"),
        (
            {"devices": {"gamma": {"static_watt": 1}}},
            "energy.devices.gamma.static_watt",
            "did you mean 'static_watts'",
        ),
        (
            {"devices": {"gamma": {"power": {"path": "$.apower"}}}},
            "energy.devices.gamma.power.topic",
            "is missing",
        ),
        ({"devices": "gamma"}, "energy.devices", "is not a table"),
        ({"ledger": {"interval": 0.5}}, "energy.ledger.interval", "expected a number >= 1"),
        ({"surplus": {"margin_w": -1}}, "energy.surplus.margin_w", "out of range"),
    ],
)
def test_errors_name_the_dotted_key(table: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)) as caught:
        parse_energy(table, device_names=["gamma"])
    assert caught.value.field == key


def test_device_power_errors_name_the_device_key() -> None:
    energy = parse_energy({"devices": {"gamma": {"static_watts": 30}}})
    with pytest.raises(ConfigError, match="static_watts") as caught:
        energy.device_power("gamma", "BM1370", 1, None)
    assert caught.value.field == "energy.devices.gamma.static_watts"
    with pytest.raises(ConfigError, match="set chip_model") as unknown:
        parse_energy({}).device_power("emu", "EMULATED", 1, None)
    assert unknown.value.field == "energy.devices.emu.chip_model"
    low = parse_energy({"devices": {"g": {"min_frequency_mhz": 600}}})
    with pytest.raises(ConfigError, match="above the maximum"):
        low.device_power("g", "BM1370", 1, None)


def test_the_docs_sample_config_parses() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "energy.md"
    blocks = re.findall(r"```toml\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "docs/energy.md has TOML examples"
    for block in blocks:
        data = tomllib.loads(block)
        if "energy" in data:
            parse_energy(data["energy"])
