"""Fan and core voltage of a live daemon's emulated Bitaxe Gamma, set through the
authenticated write paths: REST ``PATCH /api/system`` (AxeOS ``fanspeed``,
``autofanspeed``, ``coreVoltage`` in mV), the MQTT commands, the Home Assistant
entities discovered for them, and cgminer ``ascset`` (``fan``, ``voltage``) from an
allow-listed client (pyasic's RPC client).

The truth is the emulator's registers: the EMC2101's FAN_SETTING duty and the TPS546's
VOUT_COMMAND. A value outside the Gamma's limits (fan 0-100 %, 1.0-1.3 V) is refused
with the limit in the message and leaves the registers as they were.
"""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from live_helpers import Watcher, wait_until

from stratum_client.api.model import DeviceState
from tests.daemon.conftest import PoolFactory
from tests.daemon.test_daemon_boards_telemetry import BASE, LiveBoard, live_board

if TYPE_CHECKING:
    from conftest import MosquittoBroker

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic.errors import APIError  # type: ignore[import-untyped]
    from pyasic.rpc.cgminer import CGMinerRPCAPI  # type: ignore[import-untyped]

TOKEN = "board-writes-token"
DUTY_SLACK = 2.0
"""The EMC2101's duty register has 1/63 steps."""
VOLT_SLACK = 0.002
"""VOUT_COMMAND is ULINEAR16 with a 2^-9 V step."""


async def patch(live: LiveBoard, body: object, token: str | None = TOKEN) -> tuple[int, Any]:
    assert live.rest.server is not None
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{live.rest.server.port}/api/system"
    async with (
        aiohttp.ClientSession() as session,
        session.patch(url, data=json.dumps(body), headers=headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


async def test_rest_sets_fan_and_core_voltage_within_the_boards_limits(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    async with live_board(tmp_path, pool_factory, rest_token=TOKEN) as live:
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        await wait_until("the PID driving the fan", lambda: emc.duty_pct < 99)
        duty, vout = emc.duty_pct, tps.vout_command

        assert (await patch(live, {"fanspeed": 10, "autofanspeed": 0}, token=None))[0] == 401
        assert (await patch(live, {"coreVoltage": 1200}, token="wrong"))[0] == 401
        assert emc.duty_pct == pytest.approx(duty, abs=DUTY_SLACK)
        assert tps.vout_command == vout

        status, reply = await patch(live, {"fanspeed": 10, "autofanspeed": 0})
        assert (status, reply["fanspeed"]) == (200, {"gamma": 10})
        assert emc.duty_pct == pytest.approx(10, abs=DUTY_SLACK)
        await asyncio.sleep(1.0)  # five polls: the PID (minimum 25 %) is off
        assert emc.duty_pct == pytest.approx(10, abs=DUTY_SLACK)

        status, reply = await patch(live, {"coreVoltage": 1200})
        assert (status, reply["coreVoltage"]) == (200, {"gamma": 1200})
        assert tps.vout_command == pytest.approx(1.2, abs=VOLT_SLACK)
        assert tps.output_on

        status, reply = await patch(live, {"coreVoltage": 1500})
        assert status == 400
        assert "core_voltage" in reply["error"]
        assert "1..1.3" in reply["error"]
        status, reply = await patch(live, {"fanspeed": 150})
        assert status == 400
        assert "fan_percent" in reply["error"]
        assert "0..100" in reply["error"]
        assert tps.vout_command == pytest.approx(1.2, abs=VOLT_SLACK)
        assert emc.duty_pct == pytest.approx(10, abs=DUTY_SLACK)

        status, reply = await patch(live, {"autofanspeed": 1})
        assert (status, reply["fanspeed"]) == (200, {"gamma": "auto"})
        await wait_until("the PID back (at least its 25 %)", lambda: emc.duty_pct >= 24)
        assert live.daemon.runner("gamma").status.paused_by == ()


async def test_mqtt_commands_set_fan_and_core_voltage(
    tmp_path: Path, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    result = f"{BASE}/cmd/result"
    async with (
        live_board(tmp_path, pool_factory, mqtt_port=broker.port) as live,
        Watcher(broker.port, f"{BASE}/#") as mqtt,
    ):
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        state = f"{BASE}/device/gamma/state"  # published once subscribed to the commands
        await mqtt.document(state, lambda d: d.get("board_state") == "mining")
        await mqtt.publish(f"{BASE}/cmd/set_core_voltage", b'{"volts": 1.25, "request_id": "v"}')
        done = await mqtt.result(result, "v")
        assert (done["ok"], done["result"]) == (True, {"volts": 1.25})
        assert tps.vout_command == pytest.approx(1.25, abs=VOLT_SLACK)

        await mqtt.publish(f"{BASE}/cmd/set_core_voltage", b'{"volts": 1.4, "request_id": "x"}')
        refused = await mqtt.result(result, "x")
        assert not refused["ok"]
        assert "1..1.3" in refused["error"]
        assert tps.vout_command == pytest.approx(1.25, abs=VOLT_SLACK)

        await mqtt.publish(f"{BASE}/cmd/set_fan", b'{"percent": 40, "request_id": "f"}')
        fan = await mqtt.result(result, "f")
        assert (fan["ok"], fan["result"]) == (True, {"percent": 40})
        assert emc.duty_pct == pytest.approx(40, abs=DUTY_SLACK)


async def test_cgminer_ascset_sets_fan_and_core_voltage_for_an_allowed_client(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    async with live_board(tmp_path, pool_factory) as live:
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        assert live.cgminer.server is not None
        rpc = CGMinerRPCAPI("127.0.0.1", live.cgminer.server.port)
        await wait_until("the PID driving the fan", lambda: emc.duty_pct < 99)
        await wait_until("the board's limits in the state", lambda: _on_board(live))

        fan = await rpc.ascset(0, "fan", 15)
        assert (fan["STATUS"][0]["STATUS"], fan["STATUS"][0]["Msg"]) == ("S", "ASC 0 set OK")
        assert emc.duty_pct == pytest.approx(15, abs=DUTY_SLACK)
        volts = await rpc.ascset(0, "voltage", "1.21")
        assert volts["STATUS"][0]["STATUS"] == "S"
        assert tps.vout_command == pytest.approx(1.21, abs=VOLT_SLACK)
        assert tps.output_on

        with pytest.raises(
            APIError, match=re.escape("voltage 1.6 is outside bitaxe-gamma's limits 1..1.3")
        ):
            await rpc.ascset(0, "voltage", "1.6")
        with pytest.raises(
            APIError, match=re.escape("fan 101 is outside bitaxe-gamma's limits 0..100")
        ):
            await rpc.ascset(0, "fan", 101)
        assert tps.vout_command == pytest.approx(1.21, abs=VOLT_SLACK)
        await asyncio.sleep(1.0)  # five polls: the PID (minimum 25 %) stays off
        assert emc.duty_pct == pytest.approx(15, abs=DUTY_SLACK)

        await rpc.ascset(0, "fan", "auto")
        await wait_until("the PID back (at least its 25 %)", lambda: emc.duty_pct >= 24)


def _on_board(live: LiveBoard) -> bool:
    """The API's state shows the chain on its board, the limits with it."""
    assert live.cgminer.server is not None
    devices: tuple[DeviceState, ...] = live.cgminer.server.state_provider().devices
    return any(d.board is not None and d.board.fan_limits is not None for d in devices)


async def test_home_assistant_numbers_and_button_drive_the_board(
    tmp_path: Path, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    topics = {name: f"homeassistant/{kind}/{BASE}/gamma_{name}/config" for kind, name in (
        ("number", "fan_set"), ("number", "core_voltage_set"), ("button", "fan_auto"))}  # fmt: skip
    async with live_board(tmp_path, pool_factory, mqtt_port=broker.port) as live:
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        await wait_until("the PID driving the fan", lambda: emc.duty_pct < 99)
        async with Watcher(broker.port, "homeassistant/#") as ha:  # retained, as HA finds them
            await wait_until("board controls discovered",
                             lambda: all(ha.has(t) for t in topics.values()))  # fmt: skip
            fan, volts, auto = (ha.latest(t) for t in topics.values())
            assert (fan["min"], fan["max"], volts["min"], volts["max"]) == (0, 100, 1.0, 1.3)
            await ha.publish(fan["command_topic"], _rendered(fan, "20"))
            await wait_until("fan at 20 %", lambda: abs(emc.duty_pct - 20) <= DUTY_SLACK)
            await ha.publish(volts["command_topic"], _rendered(volts, "1.19"))
            await wait_until("VOUT at 1.19 V", lambda: abs(tps.vout_command - 1.19) <= VOLT_SLACK)
            await ha.publish(auto["command_topic"], auto["payload_press"].encode())
            await wait_until("the PID back (at least its 25 %)", lambda: emc.duty_pct >= 24)


def _rendered(config: dict[str, Any], value: str) -> bytes:
    """What HA publishes for a number set to ``value``: its command template, rendered."""
    return str(config["command_template"]).replace("{{ value }}", value).encode()


async def test_settings_made_through_rest_hold_after_a_restart(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    """AxeOS tools expect a setting to survive a restart: the next daemon powers the
    board up at the stored voltage and holds the stored fan duty (the PID stays off)."""
    async with live_board(tmp_path, pool_factory, rest_token=TOKEN) as live:
        status, _ = await patch(live, {"coreVoltage": 1250, "fanspeed": 30, "autofanspeed": 0})
        assert status == 200
    stored = json.loads((tmp_path / "board-settings.json").read_text())
    assert stored["devices"]["gamma"] == {"core_voltage_v": 1.25, "fan_percent": 30.0}

    async with live_board(tmp_path, pool_factory, rest_token=TOKEN) as live:
        emc, tps = live.emulator.board.emc, live.emulator.board.tps
        assert tps.vout_command == pytest.approx(1.25, abs=VOLT_SLACK)  # not the 1.15 default
        await asyncio.sleep(1.0)  # five polls: a PID would have moved the duty
        assert emc.duty_pct == pytest.approx(30, abs=DUTY_SLACK)
        assert (await patch(live, {"autofanspeed": 1}))[0] == 200
    stored = json.loads((tmp_path / "board-settings.json").read_text())
    assert stored["devices"]["gamma"] == {"core_voltage_v": 1.25, "fan_percent": None}
