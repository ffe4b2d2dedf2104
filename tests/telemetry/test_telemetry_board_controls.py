"""Home Assistant's board controls over a real mosquitto: the fan-duty and core-voltage
``number`` entities and the fan-automatic ``button`` are retained on the broker, and
what HA publishes for them (each template rendered, as HA renders it) reaches
``MinerControl`` as ``set_fan`` / ``set_core_voltage`` for that chain."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from live_helpers import Watcher, wait_until

from stratum_client.api.model import BoardReadout, MinerState
from tests.telemetry.test_telemetry_mqtt import BASE, NODE, fast, mqtt_config, running

if TYPE_CHECKING:
    from tests.conftest import MosquittoBroker
    from tests.telemetry.conftest import RecordingControl

GAMMA = BoardReadout("bitaxe-gamma", "mining", fan_percent=40.0, fan_limits=(0.0, 100.0),
                     core_voltage_limits=(1.0, 1.3))  # fmt: skip
FAN = f"homeassistant/number/{NODE}/ultra_fan_set/config"
VOLTS = f"homeassistant/number/{NODE}/ultra_core_voltage_set/config"
AUTO = f"homeassistant/button/{NODE}/ultra_fan_auto/config"


def rendered(config: dict[str, Any], value: str) -> bytes:
    return str(config["command_template"]).replace("{{ value }}", value).encode()


async def test_board_controls_are_discovered_and_drive_the_board(
    broker: MosquittoBroker, state: MinerState, control: RecordingControl
) -> None:
    device = dataclasses.replace(state.devices[0], board=GAMMA)
    board_state = dataclasses.replace(state, devices=(device,))
    telemetry = fast(mqtt_config(broker), lambda: board_state, control)
    async with running(telemetry):
        await wait_until("connected", telemetry.connected.is_set)
        async with Watcher(broker.port, "homeassistant/#") as ha:  # as HA finds them: retained
            await wait_until("controls retained", lambda: all(
                any(t == topic and flag for t, _, flag in ha.messages)
                for topic in (FAN, VOLTS, AUTO)
            ))  # fmt: skip
            fan, volts, auto = (ha.latest(topic) for topic in (FAN, VOLTS, AUTO))
            assert (fan["min"], fan["max"]) == (0.0, 100.0)
            assert (volts["min"], volts["max"]) == (1.0, 1.3)
            await ha.publish(fan["command_topic"], rendered(fan, "30"))
            await ha.publish(volts["command_topic"], rendered(volts, "1.22"))
            await ha.publish(auto["command_topic"], auto["payload_press"].encode())
            await wait_until("three commands carried out", lambda: len(control.calls) == 3)
    assert control.calls == [
        ("set_fan", ("ultra", 30.0)),
        ("set_core_voltage", ("ultra", 1.22)),
        ("set_fan", ("ultra", None)),
    ]
    assert json.loads(auto["payload_press"]) == {"device": "ultra", "auto": True}
    assert auto["availability_topic"] == f"{BASE}/availability"
