"""MQTT commands, without I/O: ``<base>/cmd/<command>`` in, validated requests out.

Commands are validated against the current state here, so the shell only ever hands
``MinerControl`` a request that names a real device or pool with a sane value; anything
else becomes an error result on ``<base>/cmd/result``, never an exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratum_client.api.model import MinerState
from stratum_client.telemetry.topics import Message, Topics, to_json

__all__ = [
    "COMMANDS",
    "MAX_COMMAND_BYTES",
    "Command",
    "CommandError",
    "parse_command",
    "result_message",
]

MAX_COMMAND_BYTES = 1024
MAX_REQUEST_ID = 64
MAX_REASON = 120
MHZ_RANGE = (1.0, 2000.0)
COMMANDS = (
    "pause",
    "resume",
    "mining",
    "set_frequency",
    "set_fan",
    "set_core_voltage",
    "switch_pool",
)


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command, ready for ``MinerControl``."""

    name: str
    request_id: str | None = None
    reason: str = "MQTT"
    running: bool = True
    device: str = ""
    mhz: float = 0.0
    pool: int = -1
    percent: float | None = None
    """``set_fan``: the fixed duty; None: the board's PID drives the fan."""
    volts: float = 0.0


@dataclass(frozen=True, slots=True)
class CommandError:
    """A command that cannot run; answered on the result topic."""

    name: str | None
    request_id: str | None
    error: str


Fields = Mapping[str, object]
Validator = Callable[[Fields, str | None, MinerState], "Command | str"]


def _only(fields: Fields, allowed: tuple[str, ...]) -> str | None:
    extra = sorted(key[:32] for key in fields if key not in (*allowed, "request_id"))
    return f"unknown field(s): {', '.join(extra[:8])}" if extra else None


def _pause(fields: Fields, rid: str | None, _state: MinerState) -> Command | str:
    reason = fields.get("reason", "MQTT")
    if not isinstance(reason, str) or not reason.isprintable() or len(reason) > MAX_REASON:
        return f"reason must be printable text of at most {MAX_REASON} characters"
    return _only(fields, ("reason",)) or Command("pause", rid, reason=reason or "MQTT")


def _resume(fields: Fields, rid: str | None, _state: MinerState) -> Command | str:
    return _only(fields, ()) or Command("resume", rid)


def _mining(fields: Fields, rid: str | None, _state: MinerState) -> Command | str:
    running = fields.get("running")
    if not isinstance(running, bool):
        return "running must be true or false"
    return _only(fields, ("running",)) or Command("mining", rid, running=running)


def _device(fields: Fields, state: MinerState, *, on_board: bool = False) -> tuple[str, str]:
    """``(device, "")`` from the ``device`` field (defaulting to the only one), or
    ``("", why not)``."""
    names = [d.name for d in state.devices if d.board is not None or not on_board]
    device = fields.get("device", names[0] if len(names) == 1 else None)
    if not isinstance(device, str) or device not in names:
        what = "a device on a board" if on_board else "device"
        return "", f"{what} must be one of: {', '.join(names[:16]) or '(none)'}"
    return device, ""


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None  # type: ignore[arg-type]


def _set_fan(fields: Fields, rid: str | None, state: MinerState) -> Command | str:
    device, why_not = _device(fields, state, on_board=True)
    if why_not:
        return why_not
    auto, percent = fields.get("auto", False), fields.get("percent")
    if not isinstance(auto, bool) or auto == (percent is not None):
        return "give percent (a fixed duty) or auto: true (the board's PID)"
    duty = None if auto else _number(percent)
    if not auto and duty is None:
        return "percent must be a number"
    unknown = _only(fields, ("device", "auto", "percent"))
    return unknown or Command("set_fan", rid, device=device, percent=duty)


def _set_core_voltage(fields: Fields, rid: str | None, state: MinerState) -> Command | str:
    device, why_not = _device(fields, state, on_board=True)
    if why_not:
        return why_not
    volts = _number(fields.get("volts"))
    if volts is None or volts <= 0:
        return "volts must be a positive number"
    unknown = _only(fields, ("device", "volts"))
    return unknown or Command("set_core_voltage", rid, device=device, volts=volts)


def _set_frequency(fields: Fields, rid: str | None, state: MinerState) -> Command | str:
    device, why_not = _device(fields, state)
    if why_not:
        return why_not
    mhz = fields.get("mhz")
    low, high = MHZ_RANGE
    if isinstance(mhz, bool) or not isinstance(mhz, int | float) or not low <= mhz <= high:
        return f"mhz must be a number from {low:g} to {high:g}"
    unknown = _only(fields, ("device", "mhz"))
    return unknown or Command("set_frequency", rid, device=device, mhz=float(mhz))


def _switch_pool(fields: Fields, rid: str | None, state: MinerState) -> Command | str:
    wanted = fields.get("pool", fields.get("index"))
    for pool in state.pools:
        if (isinstance(wanted, int) and not isinstance(wanted, bool) and wanted == pool.index) or (
            isinstance(wanted, str) and wanted == pool.name
        ):
            return _only(fields, ("pool", "index")) or Command("switch_pool", rid, pool=pool.index)
    return f"pool must be a pool index (0-{len(state.pools) - 1}) or name"


_VALIDATORS: Mapping[str, Validator] = {
    "pause": _pause,
    "resume": _resume,
    "mining": _mining,
    "set_frequency": _set_frequency,
    "set_fan": _set_fan,
    "set_core_voltage": _set_core_voltage,
    "switch_pool": _switch_pool,
}


def _fields(payload: bytes) -> Fields | str:
    if len(payload) > MAX_COMMAND_BYTES:
        return f"payload over {MAX_COMMAND_BYTES} bytes"
    if not payload.strip():
        return {}
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError):
        return "payload is not valid JSON"
    return decoded if isinstance(decoded, dict) else "payload must be a JSON object"


def _request_id(fields: Fields) -> str | CommandError | None:
    rid = fields.get("request_id")
    if rid is None:
        return None
    if isinstance(rid, int) and not isinstance(rid, bool):
        return str(rid)
    if isinstance(rid, str) and len(rid) <= MAX_REQUEST_ID and rid.isprintable():
        return rid
    return CommandError(None, None, f"request_id must be a string of at most {MAX_REQUEST_ID}")


def parse_command(
    topic: str, payload: bytes, topics: Topics, state: MinerState
) -> Command | CommandError | None:
    """Turn one message under ``<base>/cmd/`` into a command or an error.

    ``None`` means "not for us" (our own result topic, or outside the command tree).
    """
    prefix = topics.command("")
    if not topic.startswith(prefix) or topic == topics.result:
        return None
    name = topic[len(prefix) :]
    fields = _fields(payload)
    if isinstance(fields, str):
        return CommandError(name if name in _VALIDATORS else None, None, fields)
    rid = _request_id(fields)
    if isinstance(rid, CommandError):
        return CommandError(name if name in _VALIDATORS else None, None, rid.error)
    validator = _VALIDATORS.get(name)
    if validator is None:
        return CommandError(
            None, rid, f"unknown command {name[:32]!r}; known: {', '.join(COMMANDS)}"
        )
    checked = validator(fields, rid, state)
    return CommandError(name, rid, checked) if isinstance(checked, str) else checked


def result_message(
    topics: Topics,
    *,
    command: str | None,
    request_id: str | None,
    error: str | None,
    result: object = None,
) -> Message:
    """``{ok, error, request_id, command, result}`` on ``<base>/cmd/result``."""
    payload = {
        "ok": error is None,
        "error": error,
        "request_id": request_id,
        "command": command,
        "result": result,
    }
    return Message(topics.result, to_json(payload), retain=False, qos=1)
