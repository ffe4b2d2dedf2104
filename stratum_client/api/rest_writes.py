"""The REST API's writes: the bearer-token check, settings parsing, action replies.

A write exists only when ``[api] rest_token`` is set, and needs
``Authorization: Bearer <token>`` (compared in constant time). An authorised request comes
back as a :class:`RestAction` for the shell to run against ``MinerControl``; its
outcomes become the reply through :func:`action_response`.
"""

from __future__ import annotations

import enum
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


class RestActionKind(enum.StrEnum):
    SET_FREQUENCY = "set_frequency"
    RESTART = "restart"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class RestAction:
    """An authorised write for the shell to run against ``MinerControl``."""

    kind: RestActionKind
    mhz: float = 0.0
    devices: tuple[str, ...] = ()

    @property
    def replies_first(self) -> bool:
        return self.kind is RestActionKind.RESTART


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


def patch_system(
    request: HttpRequest, state: MinerState, token: Secret | None
) -> HttpResponse | RestAction:
    """``PATCH /api/system``: only ``frequency`` (MHz, every device) can be changed."""
    denied = authorised(request, token)
    if denied is not None:
        return denied
    settings = _settings(request.body)
    if isinstance(settings, HttpResponse):
        return settings
    unsupported = sorted(key[:32] for key in settings if key != "frequency")
    if unsupported:
        return error(400, f"unsupported setting(s): {', '.join(unsupported[:8])}")
    mhz = settings.get("frequency")
    if isinstance(mhz, bool) or not isinstance(mhz, int | float) or not 1 <= mhz <= MAX_MHZ:
        return error(400, f"frequency must be a number of MHz from 1 to {MAX_MHZ:g}")
    names = tuple(device.name for device in state.devices)
    if not names:
        return error(400, "no devices to set")
    return RestAction(RestActionKind.SET_FREQUENCY, float(mhz), names)


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
    messages = {
        RestActionKind.RESTART: "System will restart shortly.",
        RestActionKind.PAUSE: "Mining paused.",
        RestActionKind.RESUME: "Mining resumed.",
    }
    return json_response(200, {"message": messages[action.kind]})
