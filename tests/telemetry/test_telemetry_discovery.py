"""Home Assistant discovery configs: topics, units, classes, wiring and updates."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from stratum_client.api.model import MinerState
from stratum_client.telemetry import discovery
from stratum_client.telemetry.topics import Topics

T = Topics("stratum-client/rig1")
PREFIX = "homeassistant"
NODE = "stratum-client_rig1"


def configs(state: MinerState) -> dict[str, Any]:
    return discovery.discovery_configs(state, T, PREFIX)


def sensor(state: MinerState, object_id: str) -> Any:
    return configs(state)[f"{PREFIX}/sensor/{NODE}/{object_id}/config"]


def test_topics_and_identity(state: MinerState) -> None:
    found = configs(state)
    assert all(topic.startswith(f"{PREFIX}/") and topic.endswith("/config") for topic in found)
    assert all(topic.split("/")[2] == NODE for topic in found)
    unique_ids = [config["unique_id"] for config in found.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for config in found.values():
        assert config["availability_topic"] == T.availability
        assert (config["payload_available"], config["payload_not_available"]) == (
            "online",
            "offline",
        )
        assert config["device"] == {
            "identifiers": [NODE],
            "name": "rig1",
            "manufacturer": "stratum-client",
            "model": "BM1366 × 1",
            "sw_version": "0.1.0",
        }


def test_sensor_units_and_classes(state: MinerState) -> None:
    expected = {
        "hashrate_1m": ("GH/s", None, "measurement"),
        "hashrate_5m": ("GH/s", None, "measurement"),
        "hashrate_15m": ("GH/s", None, "measurement"),
        "accepted": (None, None, "total_increasing"),
        "rejected": (None, None, "total_increasing"),
        "stale": (None, None, "total_increasing"),
        "best_share": (None, None, "measurement"),
        "power": ("W", "power", "measurement"),
        "energy": ("kWh", "energy", "total_increasing"),
        "uptime": ("s", "duration", "total_increasing"),
        "ultra_temperature": ("°C", "temperature", "measurement"),
        "ultra_frequency": ("MHz", "frequency", "measurement"),
        "ultra_power": ("W", "power", "measurement"),
        "ultra_hashrate_1m": ("GH/s", None, "measurement"),
    }
    for object_id, (unit, device_class, state_class) in expected.items():
        config = sensor(state, object_id)
        assert config.get("unit_of_measurement") == unit, object_id
        assert config.get("device_class") == device_class, object_id
        assert config.get("state_class") == state_class, object_id
        assert config["value_template"].startswith("{{ value_json.")
    assert sensor(state, "ultra_temperature")["state_topic"] == T.device("ultra")
    assert sensor(state, "power")["state_topic"] == T.state
    enum = sensor(state, "ultra_status")
    assert (enum["device_class"], enum["options"]) == (
        "enum",
        ["Alive", "Sick", "Dead", "Initialising"],
    )
    assert "state_class" not in enum
    assert sensor(state, "mining_state")["options"] == ["running", "paused"]


def test_optional_sensors_follow_the_driver(make_state: Callable[..., MinerState]) -> None:
    base = make_state()
    blind = dataclasses.replace(base.devices[0], temperature_c=None, voltage_v=None, power_w=None)
    found = configs(make_state(devices=(blind,)))
    ids = {topic.split("/")[3] for topic in found}
    assert "ultra_temperature" not in ids
    assert "ultra_voltage" not in ids
    assert {"ultra_frequency", "ultra_status", "ultra_chips_alive"} <= ids


def test_controls_are_wired_to_command_topics(state: MinerState) -> None:
    found = configs(state)
    switch = found[f"{PREFIX}/switch/{NODE}/mining/config"]
    assert switch["command_topic"] == T.command("mining")
    assert json.loads(switch["payload_on"]) == {"running": True}
    assert json.loads(switch["payload_off"]) == {"running": False}
    assert (switch["state_on"], switch["state_off"]) == ("running", "paused")
    select = found[f"{PREFIX}/select/{NODE}/pool_select/config"]
    assert select["command_topic"] == T.command("switch_pool")
    assert select["options"] == ["main", "backup"]
    assert "tojson" in select["command_template"]
    number = found[f"{PREFIX}/number/{NODE}/ultra_frequency_set/config"]
    assert number["command_topic"] == T.command("set_frequency")
    assert number["command_template"] == '{"device": "ultra", "mhz": {{ value }}}'
    assert (number["unit_of_measurement"], number["device_class"]) == ("MHz", "frequency")
    assert number["min"] < 485 < number["max"]


def test_updates_send_only_changes_and_delete_removed(
    make_state: Callable[..., MinerState],
) -> None:
    first, published = discovery.discovery_updates(configs(make_state()), {})
    assert first
    assert all(m.retain and m.qos == 1 for m in first)
    assert all(json.loads(m.payload)["unique_id"] for m in first)
    again, same = discovery.discovery_updates(configs(make_state()), published)
    assert again == []
    assert same == published
    base = make_state()
    cooler = dataclasses.replace(base.devices[0], temperature_c=None)
    changed, _ = discovery.discovery_updates(configs(make_state(devices=(cooler,))), published)
    removed = [m for m in changed if m.payload == b""]
    assert [m.topic for m in removed] == [f"{PREFIX}/sensor/{NODE}/ultra_temperature/config"]
    assert all(m.retain for m in removed)
