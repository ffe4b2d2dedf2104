"""The REST API's writes: the bearer-token check, settings parsing, action replies.

A write exists only when ``[api] rest_token`` is set, and needs
``Authorization: Bearer <token>`` (compared in constant time). ``PATCH /api/system`` takes the AxeOS
fields ``frequency`` (MHz, every chain), ``fanspeed`` (%, a fixed duty), ``autofanspeed``
(1: the board's PID drives the fan, 0: the fixed ``fanspeed``) and ``coreVoltage`` (mV);
the fan and voltage go to every chain on a board, whose limits decide (a value outside
them is refused with the limit named). An authorised request comes
back as a :class:`RestAction` for the shell to run against ``MinerControl``; its
outcomes become the reply through :func:`action_response`.
"""

from __future__ import annotations

import enum
import hmac
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from stratum_client.api.model import ControlOutcome, MinerState
from stratum_client.api.rest_http import HttpRequest, HttpResponse, error, json_response
from stratum_client.secrets import Secret

__all__ = [
    "MAX_MHZ",
    "RestAction",
    "RestActionKind",
    "action_response",
    "authorised",
    "patch_system",
    "post",
]

MAX_MHZ = 2000.0
SETTINGS = ("frequency", "fanspeed", "autofanspeed", "coreVoltage")
"""What ``PATCH /api/system`` can change (AxeOS names)."""


class RestActionKind(enum.StrEnum):
    SET_FREQUENCY = "set_frequency"
    SET_SYSTEM = "set_system"
    """Board settings (fan, core voltage), with or without a frequency."""
    RESTART = "restart"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class RestAction:
    """An authorised write for the shell to run against ``MinerControl``."""

    kind: RestActionKind
    mhz: float = 0.0
    devices: tuple[str, ...] = ()
    sets_fan: bool = False
    fan_percent: float | None = None
    """The fixed duty; None with ``sets_fan``: the PID drives the fan."""
    core_voltage_v: float | None = None
    boards: tuple[str, ...] = ()
    """The chains on a board, for the fan and core voltage."""

    @property
    def replies_first(self) -> bool:
        return self.kind is RestActionKind.RESTART

    def calls(self) -> list[tuple[str, str]]:
        """``(setting, device)`` for each control call, in the order they run."""
        calls = [("frequency", name) for name in self.devices if self.mhz]
        calls += [("fanspeed", name) for name in self.boards if self.sets_fan]
        calls += [("coreVoltage", name) for name in self.boards if self.core_voltage_v]
        return calls


def authorised(request: HttpRequest, token: Secret | None) -> HttpResponse | None:
    """``None`` when the bearer token matches; else the 403/401 to send."""
    if token is None:
        return error(403, "read-only API: configure api.rest_token to allow changes")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.reveal().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return error(401, "missing or wrong bearer token", ("WWW-Authenticate", "Bearer"))
    return None


def _settings(body: bytes) -> dict[str, object] | HttpResponse:
    try:
        decoded = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return error(400, "body is not valid JSON")
    if not isinstance(decoded, dict):
        return error(400, "body must be a JSON object")
    return decoded


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _fan(settings: dict[str, object]) -> tuple[bool, float | None] | HttpResponse:
    """``(sets_fan, fixed duty)`` from ``fanspeed`` and ``autofanspeed``."""
    auto, duty = settings.get("autofanspeed"), settings.get("fanspeed")
    if auto is not None and (isinstance(auto, bool) or auto not in (0, 1)):
        return error(400, "autofanspeed must be 0 (fixed fanspeed) or 1 (automatic)")
    if duty is not None and _number(duty) is None:
        return error(400, "fanspeed must be a number (percent)")
    if auto == 1:
        return True, None
    if duty is None:
        return (False, None) if auto is None else error(400, "autofanspeed 0 needs fanspeed")
    return True, _number(duty)


def _board_action(settings: dict[str, object], state: MinerState) -> RestAction | HttpResponse:
    fan = _fan(settings)
    if isinstance(fan, HttpResponse):
        return fan
    millivolts = settings.get("coreVoltage")
    volts = None if millivolts is None else _number(millivolts)
    if millivolts is not None and (volts is None or volts <= 0):
        return error(400, "coreVoltage must be a positive number of mV")
    boards = tuple(device.name for device in state.devices if device.board is not None)
    if not boards:
        return error(400, "no board to set fanspeed or coreVoltage on")
    return RestAction(RestActionKind.SET_SYSTEM, sets_fan=fan[0], fan_percent=fan[1],
                      core_voltage_v=volts / 1000 if volts else None, boards=boards)  # fmt: skip


def patch_system(
    request: HttpRequest, state: MinerState, token: Secret | None
) -> HttpResponse | RestAction:
    """``PATCH /api/system``: ``frequency``, ``fanspeed``/``autofanspeed``, ``coreVoltage``."""
    denied = authorised(request, token)
    if denied is not None:
        return denied
    settings = _settings(request.body)
    if isinstance(settings, HttpResponse):
        return settings
    unsupported = sorted(key[:32] for key in settings if key not in SETTINGS)
    if unsupported:
        return error(400, f"unsupported setting(s): {', '.join(unsupported[:8])}")
    if not settings or None in settings.values():
        return error(400, f"nothing to set (settings: {', '.join(SETTINGS)}, each a number)")
    action = RestAction(RestActionKind.SET_FREQUENCY)
    if set(settings) - {"frequency"}:
        board = _board_action(settings, state)
        if isinstance(board, HttpResponse):
            return board
        action = board
    return (
        _with_frequency(action, settings["frequency"], state) if "frequency" in settings else action
    )


def _with_frequency(
    action: RestAction, value: object, state: MinerState
) -> RestAction | HttpResponse:
    mhz = _number(value)
    if mhz is None or not 1 <= mhz <= MAX_MHZ:
        return error(400, f"frequency must be a number of MHz from 1 to {MAX_MHZ:g}")
    names = tuple(device.name for device in state.devices)
    if not names:
        return error(400, "no devices to set")
    return replace(action, mhz=mhz, devices=names)


def post(
    kind: RestActionKind,
) -> Callable[[HttpRequest, MinerState, Secret | None], HttpResponse | RestAction]:
    """A bodiless ``POST`` that becomes ``kind`` once the token checks out."""

    def handler(
        request: HttpRequest, _state: MinerState, token: Secret | None
    ) -> HttpResponse | RestAction:
        return authorised(request, token) or RestAction(kind)

    return handler


def action_response(action: RestAction, outcomes: Sequence[ControlOutcome]) -> HttpResponse:
    """200 when every call succeeded; 400 if the daemon refused the request, else 500."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed:
        status = 400 if all(outcome.rejected for outcome in failed) else 500
        return error(status, "; ".join(outcome.error or "failed" for outcome in failed))
    if action.kind is RestActionKind.SET_FREQUENCY:
        reached = {
            name: outcome.value for name, outcome in zip(action.devices, outcomes, strict=True)
        }
        return json_response(200, {"message": "frequency set", "frequency": reached})
    if action.kind is RestActionKind.SET_SYSTEM:
        applied: dict[str, dict[str, object]] = {}
        for (setting, name), outcome in zip(action.calls(), outcomes, strict=True):
            value = outcome.value
            if setting == "coreVoltage" and value is not None:
                value = round(value * 1000)
            applied.setdefault(setting, {})[name] = "auto" if value is None else value
        return json_response(200, {"message": "settings applied", **applied})
    messages = {
        RestActionKind.RESTART: "System will restart shortly.",
        RestActionKind.PAUSE: "Mining paused.",
        RestActionKind.RESUME: "Mining resumed.",
    }
    return json_response(200, {"message": messages[action.kind]})
