"""Sans-IO telemetry: topics, state payloads, events, energy and command validation."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_client.api.model import BoardReadout, DeviceStatus, MinerState, MiningState
from stratum_client.telemetry import commands, topics
from stratum_client.telemetry.commands import Command, CommandError
from stratum_client.telemetry.mqtt import LatestSlot
from stratum_client.telemetry.topics import EnergyMeter, Topics

T = Topics("stratum-client/rig1")


def payload(messages: list[topics.Message], topic: str) -> Any:
    return json.loads(next(m.payload for m in messages if m.topic == topic))


def test_topic_layout() -> None:
    assert T.availability == "stratum-client/rig1/availability"
    assert T.state == "stratum-client/rig1/state"
    assert T.config == "stratum-client/rig1/config"
    assert T.event == "stratum-client/rig1/event"
    assert T.commands == "stratum-client/rig1/cmd/#"
    assert T.result == "stratum-client/rig1/cmd/result"
    assert T.command("pause") == "stratum-client/rig1/cmd/pause"
    assert T.device("Gamma.2 #1") == "stratum-client/rig1/device/gamma_2_1/state"
    assert topics.slug("///") == "unnamed"


def test_state_messages_are_retained_and_in_display_units(state: MinerState) -> None:
    messages = topics.state_messages(T, state, energy_kwh=0.12345)
    assert [m.topic for m in messages] == [T.state, T.device("ultra")]
    assert all(m.retain for m in messages)
    main = payload(messages, T.state)
    assert main["hashrate_1m"] == 500.0  # GH/s
    assert (main["hashrate_5m"], main["hashrate_15m"]) == (490.0, 480.0)
    assert (main["accepted"], main["rejected"], main["stale"]) == (42, 1, 0)
    assert main["best_share"] == 65536.0
    assert (main["pool"], main["pool_state"], main["pool_difficulty"]) == ("main", "active", 4096.0)
    assert (main["power_w"], main["energy_kwh"], main["mining"]) == (12.5, 0.1235, "running")
    assert (main["chips"], main["chips_alive"], main["uptime_s"]) == (1, 1, 600)
    assert [p["name"] for p in main["pools"]] == ["main", "backup"]
    device = payload(messages, T.device("ultra"))
    assert (device["temperature_c"], device["frequency_mhz"], device["power_w"]) == (
        58.2,
        485.0,
        12.5,
    )
    assert device["chip_health"] == [
        {"chip": 0, "alive": True, "nonces": 5000, "hw_errors": 1, "duplicates": 0,
         "last_nonce_age_s": 0.5},
    ]  # fmt: skip


def test_unknown_values_are_null_not_zero(make_state: Callable[..., MinerState]) -> None:
    base = make_state()
    device = dataclasses.replace(base.devices[0], temperature_c=None, power_w=None)
    messages = topics.state_messages(T, make_state(devices=(device,), power_w=None, pools=()))
    main = payload(messages, T.state)
    assert (main["power_w"], main["pool"], main["pool_state"]) == (None, None, "none")
    assert payload(messages, T.device("ultra"))["temperature_c"] is None


def test_config_message_has_no_secrets(state: MinerState) -> None:
    message = topics.config_message(T, state)
    assert (message.topic, message.retain) == (T.config, True)
    config = json.loads(message.payload)
    assert config["devices"] == [{"name": "ultra", "model": "BM1366", "chips": 1, "enabled": True}]
    assert config["pools"][0] == {
        "index": 0,
        "name": "main",
        "url": "stratum+tcp://pool.example.org:3333",
        "user": "bc1q.rig",
    }
    assert "password" not in message.payload.decode().lower()


def test_events_are_not_retained(make_state: Callable[..., MinerState]) -> None:
    before = make_state()
    main, backup = before.pools
    switched = (
        dataclasses.replace(main, state="failed"),
        dataclasses.replace(backup, state="active"),
    )
    sick = dataclasses.replace(before.devices[0], status=DeviceStatus.SICK)
    after = make_state(
        mining=MiningState.PAUSED,
        pause_reason="price",
        pools=switched,
        found_blocks=1,
        devices=(sick,),
        when=before.when + 10,
    )
    assert topics.event_messages(T, None, after) == []
    messages = topics.event_messages(T, before, after)
    assert all(not m.retain and m.topic == T.event for m in messages)
    events = [json.loads(m.payload) for m in messages]
    assert [e["event"] for e in events] == [
        "mining_paused",
        "pool_changed",
        "block_found",
        "device_status",
    ]
    assert events[0]["reason"] == "price"
    assert (events[1]["from"], events[1]["to"]) == ("main", "backup")
    assert (events[3]["from"], events[3]["to"]) == ("Alive", "Sick")
    resumed = topics.event_messages(T, after, make_state(devices=(sick,), pools=switched,
                                                          found_blocks=1))  # fmt: skip
    assert [json.loads(m.payload)["event"] for m in resumed] == ["mining_resumed"]


def test_energy_meter_integrates_and_skips_gaps() -> None:
    meter = EnergyMeter(max_gap=100)
    assert meter.update(1000.0, 0.0) == 0.0
    assert meter.update(1000.0, 36.0) == pytest.approx(0.01)
    assert meter.update(None, 72.0) == pytest.approx(0.02)
    assert meter.update(500.0, 80.0) == pytest.approx(0.02)  # unknown power adds nothing
    assert meter.update(500.0, 1000.0) == pytest.approx(0.02)  # a gap adds nothing either
    assert meter.update(500.0, 1072.0) == pytest.approx(0.03)


# --------------------------------------------------------------------------- commands


def parse(name: str, body: object, state: MinerState) -> Command | CommandError | None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return commands.parse_command(T.command(name), raw, T, state)


def test_valid_commands(state: MinerState) -> None:
    assert parse("pause", {"reason": "tariff", "request_id": "a1"}, state) == Command(
        "pause", "a1", reason="tariff"
    )
    assert parse("pause", b"", state) == Command("pause", None, reason="MQTT")
    assert parse("resume", {"request_id": 7}, state) == Command("resume", "7")
    assert parse("mining", {"running": False}, state) == Command("mining", running=False)
    assert parse("set_frequency", {"device": "ultra", "mhz": 490}, state) == Command(
        "set_frequency", device="ultra", mhz=490.0
    )
    assert parse("set_frequency", {"mhz": 490.5}, state) == Command(
        "set_frequency", device="ultra", mhz=490.5
    )  # the only device may be implied
    assert parse("switch_pool", {"pool": 1}, state) == Command("switch_pool", pool=1)
    assert parse("switch_pool", {"pool": "backup"}, state) == Command("switch_pool", pool=1)
    assert parse("switch_pool", {"index": 0}, state) == Command("switch_pool", pool=0)


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("pause", b"not json", "payload is not valid JSON"),
        ("pause", [1, 2], "payload must be a JSON object"),
        ("pause", b"x" * 2000, "payload over 1024 bytes"),
        ("pause", {"reason": 5}, "reason must be printable text"),
        ("pause", {"reason": "a\nb"}, "reason must be printable text"),
        ("pause", {"typo": 1}, "unknown field(s): typo"),
        ("mining", {"running": "yes"}, "running must be true or false"),
        ("set_frequency", {"device": "nope", "mhz": 500}, "device must be one of: ultra"),
        ("set_frequency", {"device": "ultra", "mhz": "500"}, "mhz must be a number"),
        ("set_frequency", {"device": "ultra", "mhz": 1e9}, "mhz must be a number"),
        ("set_frequency", {"device": "ultra", "mhz": True}, "mhz must be a number"),
        ("switch_pool", {"pool": 5}, "pool must be a pool index (0-1) or name"),
        ("switch_pool", {"pool": True}, "pool must be a pool index"),
        ("reboot", {}, "unknown command 'reboot'"),
        ("pause", {"request_id": ["x"]}, "request_id must be a string"),
    ],
)
def test_bad_commands_become_errors(state: MinerState, name: str, body: object, error: str) -> None:
    result = parse(name, body, state)
    assert isinstance(result, CommandError)
    assert result.error.startswith(error), result.error


def test_fan_and_core_voltage_commands_need_a_device_on_a_board(state: MinerState) -> None:
    assert parse("set_fan", {"percent": 40}, state) == CommandError(
        "set_fan", None, "a device on a board must be one of: (none)"
    )
    ultra = dataclasses.replace(state.devices[0], board=BoardReadout("bitaxe-ultra", "mining"))
    boarded = dataclasses.replace(state, devices=(ultra,))
    assert parse("set_fan", {"percent": 40}, boarded) == Command(
        "set_fan", device="ultra", percent=40.0
    )
    assert parse("set_fan", {"auto": True}, boarded) == Command("set_fan", device="ultra")
    assert parse("set_core_voltage", {"device": "ultra", "volts": 1.2}, boarded) == Command(
        "set_core_voltage", device="ultra", volts=1.2
    )
    for name, body in [("set_fan", {}), ("set_fan", {"auto": True, "percent": 5}),
                       ("set_fan", {"percent": "5"}), ("set_fan", {"auto": 1}),
                       ("set_core_voltage", {"volts": 0}), ("set_core_voltage", {"volts": "1"}),
                       ("set_core_voltage", {"volts": 1.2, "mv": 1200})]:  # fmt: skip
        assert isinstance(parse(name, body, boarded), CommandError), (name, body)


def test_error_keeps_the_request_id_when_it_can(state: MinerState) -> None:
    result = parse("set_frequency", {"request_id": "r9", "mhz": -1}, state)
    assert isinstance(result, CommandError)
    assert (result.name, result.request_id) == ("set_frequency", "r9")


def test_non_command_topics_are_ignored(state: MinerState) -> None:
    assert commands.parse_command(T.result, b"{}", T, state) is None
    assert commands.parse_command("elsewhere/cmd/pause", b"{}", T, state) is None


def test_result_message() -> None:
    message = commands.result_message(T, command="set_frequency", request_id="r1", error=None,
                                    result={"mhz": 487.5})  # fmt: skip
    assert (message.topic, message.retain) == (T.result, False)
    assert json.loads(message.payload) == {
        "ok": True,
        "error": None,
        "request_id": "r1",
        "command": "set_frequency",
        "result": {"mhz": 487.5},
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from([*commands.COMMANDS, "result", "", "x/y"]) | st.text(max_size=12),
    body=st.binary(max_size=1500)
    | st.dictionaries(
        st.sampled_from(["device", "mhz", "pool", "index", "running", "reason", "request_id", "x"]),
        json_values,
        max_size=5,
    ).map(lambda d: json.dumps(d).encode()),
)
def test_fuzz_command_payloads(state: MinerState, name: str, body: bytes) -> None:
    result = commands.parse_command(T.command(name), body, T, state)
    if isinstance(result, Command):
        assert result.name in commands.COMMANDS
        if result.name == "set_frequency":
            assert result.device == "ultra"
            assert 1.0 <= result.mhz <= 2000.0
        if result.name == "switch_pool":
            assert result.pool in (0, 1)
    elif isinstance(result, CommandError):
        message = commands.result_message(T, command=result.name, request_id=result.request_id,
                                        error=result.error)  # fmt: skip
        assert json.loads(message.payload)["ok"] is False


async def test_latest_slot_keeps_only_the_newest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert await slot.get(0.01) is None
    for value in range(5):
        slot.put(value)
    assert await slot.get(1.0) == 4
    assert await slot.get(0.01) is None
