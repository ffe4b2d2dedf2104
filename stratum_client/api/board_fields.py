"""The board readings as the APIs name them: AxeOS ``/api/system/info`` and cgminer
``stats``.

AxeOS tools (and pyasic's ESP-Miner backend) read one board per miner in its own units:
millivolts, milliamps, watts, °C, fan duty in percent. A host may drive several boards;
the first chain that runs on a board is the one shown there, as an AxeOS miner has one.
Absent readings (a sensor failed, or no board) are 0, as AxeOS prints them.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratum_client.api.model import BoardReadout, DeviceState

__all__ = [
    "BOARD_STATES",
    "SAFE_STATES",
    "axeos_board_fields",
    "cgminer_board_fields",
    "mqtt_board_fields",
]

BOARD_STATES = ("mining", "throttled", "safe", "locked_out")
"""The safety states a board reports (``boards.safety.BoardState``), for HA's enum."""
SAFE_STATES = frozenset({"safe", "locked_out"})
"""Safety states in which the board is switched off (AxeOS ``overheat_mode`` = 1)."""


def _milli(value: float | None) -> float:
    return round(value * 1000.0, 1) if value is not None else 0


def _rounded(value: float | None, digits: int = 1) -> float:
    return round(value, digits) if value is not None else 0


def axeos_board_fields(devices: Sequence[DeviceState]) -> dict[str, object]:
    """The ``/api/system/info`` keys a board fills in (none without a board)."""
    device = next((d for d in devices if d.board is not None), None)
    if device is None or device.board is None:
        return {}
    b: BoardReadout = device.board
    fields: dict[str, object] = {
        "voltage": _milli(b.input_voltage_v),
        "current": _milli(b.input_current_a),
        "vrTemp": _rounded(b.vr_temp_c),
        "fanspeed": _rounded(b.fan_percent),
        "fanrpm": round(b.fan_rpm) if b.fan_rpm is not None else 0,
        "overheat_mode": int(b.state in SAFE_STATES),
        "boardState": b.state,
        "boardStateReason": b.reason or "",
    }
    if b.core_voltage_v is not None:
        fields["coreVoltageActual"] = round(b.core_voltage_v * 1000.0)
    if device.power_source == "measured" and device.power_w is not None:
        fields["power"] = round(device.power_w, 2)
    return fields


def cgminer_board_fields(device: DeviceState) -> dict[str, object]:
    """Extra keys of a chain's cgminer ``stats`` entry, when it runs on a board."""
    b = device.board
    if b is None:
        return {}
    return {
        "Board": b.board,
        "Board State": b.state,
        "Fan Speed In": round(b.fan_rpm) if b.fan_rpm is not None else 0,
        "Fan Percent": _rounded(b.fan_percent),
        "fan1": round(b.fan_rpm) if b.fan_rpm is not None else 0,
        "temp2": _rounded(b.vr_temp_c),
        "VR Temp": _rounded(b.vr_temp_c),
        "Power": _rounded(device.power_w, 2),
        "Power Source": device.power_source,
    }


def mqtt_board_fields(device: DeviceState) -> dict[str, object]:
    """Extra keys of a chain's MQTT device state, when it runs on a board."""
    b = device.board
    if b is None:
        return {}
    return {
        "board": b.board,
        "board_state": b.state,
        "board_reason": b.reason,
        "vr_temperature_c": _none_or(b.vr_temp_c, 1),
        "fan_rpm": _none_or(b.fan_rpm, 0),
        "fan_percent": _none_or(b.fan_percent, 1),
        "input_voltage_v": _none_or(b.input_voltage_v, 3),
        "input_current_a": _none_or(b.input_current_a, 3),
        "power_source": device.power_source,
    }


def _none_or(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
