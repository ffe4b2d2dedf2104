"""Home Assistant discovery configs: topics, units, classes, wiring and updates."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from stratum_client.api.model import BoardReadout, MinerState
from stratum_client.telemetry import discovery
from stratum_client.telemetry.commands import Command, parse_command
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


GAMMA = BoardReadout("bitaxe-gamma", "mining", fan_percent=40.0, fan_limits=(0.0, 100.0),
                     core_voltage_limits=(1.0, 1.3))  # fmt: skip


def on_board(state: MinerState, board: BoardReadout | None) -> MinerState:
    return dataclasses.replace(state, devices=(dataclasses.replace(state.devices[0], board=board),))


def pressed(config: dict[str, Any], value: str) -> bytes:
    """The payload HA sends for a number set to ``value`` (its template, rendered)."""
    template: str = config["command_template"]
    assert template.count("{{ value }}") == 1
    return template.replace("{{ value }}", value).encode()


def test_a_board_gets_fan_and_core_voltage_numbers_within_its_limits(state: MinerState) -> None:
    board_state = on_board(state, GAMMA)
    found = configs(board_state)
    fan = found[f"{PREFIX}/number/{NODE}/ultra_fan_set/config"]
    volts = found[f"{PREFIX}/number/{NODE}/ultra_core_voltage_set/config"]
    assert (fan["min"], fan["max"], fan["unit_of_measurement"]) == (0.0, 100.0, "%")
    assert (volts["min"], volts["max"], volts["unit_of_measurement"]) == (1.0, 1.3, "V")
    assert volts["device_class"] == "voltage"
    assert volts["step"] < 0.01  # mV resolution, as AxeOS sets it
    assert (fan["command_topic"], volts["command_topic"]) == (
        T.command("set_fan"),
        T.command("set_core_voltage"),
    )
    assert fan["state_topic"] == volts["state_topic"] == T.device("ultra")
    assert fan["value_template"] == "{{ value_json.fan_percent }}"
    assert volts["value_template"] == "{{ value_json.voltage_v }}"
    assert fan["entity_category"] == volts["entity_category"] == "config"
    # What HA sends is a command the daemon's own validator accepts, for this chain.
    set_fan = parse_command(fan["command_topic"], pressed(fan, "35"), T, board_state)
    assert set_fan == Command("set_fan", device="ultra", percent=35.0)
    set_volts = parse_command(volts["command_topic"], pressed(volts, "1.215"), T, board_state)
    assert set_volts == Command("set_core_voltage", device="ultra", volts=1.215)


def test_the_fan_auto_button_gives_the_fan_back_to_the_pid(state: MinerState) -> None:
    board_state = on_board(state, GAMMA)
    button = configs(board_state)[f"{PREFIX}/button/{NODE}/ultra_fan_auto/config"]
    payload = button["payload_press"].encode()
    assert parse_command(button["command_topic"], payload, T, board_state) == Command(
        "set_fan", device="ultra", percent=None
    )


def test_no_write_entities_for_what_a_board_cannot_set(state: MinerState) -> None:
    piaxe = BoardReadout("piaxe", "mining")  # frequency only: no fan, no regulator
    for board in (piaxe, None):
        ids = {topic.split("/")[3] for topic in configs(on_board(state, board))}
        assert "ultra_frequency_set" in ids
        assert not {"ultra_fan_set", "ultra_core_voltage_set", "ultra_fan_auto"} & ids, board
    fan_only = dataclasses.replace(GAMMA, core_voltage_limits=None)
    ids = {topic.split("/")[3] for topic in configs(on_board(state, fan_only))}
    assert {"ultra_fan_set", "ultra_fan_auto"} <= ids
    assert "ultra_core_voltage_set" not in ids
