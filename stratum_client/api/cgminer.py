"""The cgminer RPC API without I/O: request bytes in, reply bytes or a control action out.

Monitoring tools (pyasic, cgminer exporters, miner dashboards) speak this protocol, so the
replies follow cgminer 4.13's ``api.c``: a ``STATUS`` object (S/I/W/E, When, Code, Msg,
Description), one upper-case section per command, numbers unquoted, ``"id":1``, and a
NUL after the JSON. Multi-command requests (``summary+devs``) wrap each section in a
one-element array keyed by the command name, as cgminer's code (not its README) does.

One deliberate departure: text requests (``cmd|param``) also get JSON replies. The read
commands live in :mod:`.cgminer_reads`, the privileged ones in :mod:`.cgminer_writes`,
the shared reply vocabulary in :mod:`.cgminer_wire`; this module frames, parses and
dispatches.

Privileged commands never run here: :func:`handle` returns an :class:`Action` the shell
executes (only for allow-listed clients), then :func:`action_reply` words the outcome.
The ``addpool`` password travels as a :class:`Secret` and is never echoed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratum_client.api import cgminer_reads as reads
from stratum_client.api.cgminer_wire import (
    API_VERSION,
    CGMINER_COMPAT,
    MAX_REPLY,
    MAX_REQUEST,
    PRODUCT,
    Code,
    Ctx,
    JsonRow,
    Reply,
    Section,
    Sev,
    body,
    error_reply,
    status,
)
from stratum_client.api.cgminer_writes import Action, ActionKind, AscOption, plan
from stratum_client.api.model import ControlOutcome, MinerState
from stratum_client.api.ratelimit import RateLimiter

__all__ = [
    "API_VERSION",
    "CGMINER_COMPAT",
    "COMMANDS",
    "MAX_JOINED",
    "MAX_REPLY",
    "MAX_REQUEST",
    "Action",
    "ActionKind",
    "AscOption",
    "Code",
    "RateLimiter",
    "Reply",
    "Request",
    "action_reply",
    "denied",
    "error_reply",
    "handle",
    "handle_bytes",
    "parse_request",
    "request_complete",
]

MAX_JOINED = 16
"""Commands in one ``a+b+…`` request."""


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request; ``command`` may still hold ``+``-joined names."""

    command: str
    parameter: str | None = None


def request_complete(buffer: bytes) -> bool:
    """Whether a request has fully arrived (the shell keeps reading otherwise).

    cgminer takes whatever one ``recv`` returns; we do the same for text requests but
    wait for a JSON object to close, since clients may write it in pieces.
    """
    if b"\x00" in buffer or b"\n" in buffer:
        return True
    stripped = buffer.strip()
    if not stripped.startswith(b"{"):
        return bool(stripped)
    try:
        json.loads(stripped)
    except (ValueError, RecursionError):
        return False
    return True


def parse_request(data: bytes) -> Request | tuple[int, str]:
    """Text ``cmd|param`` or JSON ``{"command":…, "parameter":…}``; else (code, msg)."""
    if len(data) > MAX_REQUEST:
        return Code.INVCMD, f"Request too large (limit {MAX_REQUEST} bytes)"
    raw = data.split(b"\x00", 1)[0]
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Code.INVCMD, "Invalid command"
    if text.startswith("{"):
        return _parse_json(text)
    command, separator, parameter = text.partition("|")
    return Request(command, parameter if separator else None)


def _parse_json(text: str) -> Request | tuple[int, str]:
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return Code.INVJSON, "Invalid JSON"
    if not isinstance(decoded, dict):
        return Code.INVJSON, "Invalid JSON"
    command = decoded.get("command")
    if command is None:
        return Code.MISCMD, "Missing JSON 'command'"
    if not isinstance(command, str):
        return Code.INVCMD, "Invalid command"
    return Request(command, _json_parameter(decoded.get("parameter")))


def _json_parameter(value: object) -> str | None:
    """cgminer accepts a string, an integer or a real as the parameter."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:f}"
    return None


def _check(_state: MinerState, param: str | None, ctx: Ctx) -> Section:
    if not param:
        return Section(status(ctx, Sev.ERROR, Code.MISCHK, "Missing check cmd"))
    spec = COMMANDS.get(param)
    access = spec is not None and (ctx.privileged or not spec.privileged)
    row: JsonRow = {"Exists": "Y" if spec else "N", "Access": "Y" if access else "N"}
    return Section(status(ctx, Sev.SUCCESS, Code.CHECK, "Check command"), "CHECK", (row,))


Reader = Callable[[MinerState, str | None, Ctx], Section]


@dataclass(frozen=True, slots=True)
class _Spec:
    read: Reader | None
    """``None`` for privileged commands (planned into an Action instead)."""
    joinable: bool

    @property
    def privileged(self) -> bool:
        return self.read is None


COMMANDS: Mapping[str, _Spec] = {
    "version": _Spec(reads.version, True),
    "config": _Spec(reads.config, True),
    "summary": _Spec(reads.summary, True),
    "pools": _Spec(reads.pools, True),
    "devs": _Spec(reads.devs, True),
    "edevs": _Spec(reads.edevs, True),
    "stats": _Spec(reads.stats, True),
    "devdetails": _Spec(reads.devdetails, True),
    "asccount": _Spec(reads.asccount, True),
    "asc": _Spec(reads.asc, False),
    "check": _Spec(_check, False),
    **{kind.value: _Spec(None, False) for kind in ActionKind},
}


def _denied(name: str, ctx: Ctx) -> Section:
    return Section(status(ctx, Sev.ERROR, Code.ACCDENY, f"Access denied to '{name}' command"))


def _invalid(ctx: Ctx) -> Section:
    return Section(status(ctx, Sev.ERROR, Code.INVCMD, "Invalid command", described=False))


def _joined(command: str, state: MinerState, ctx: Ctx) -> Reply:
    names = [name for name in command.split("+") if name]
    if len(names) > MAX_JOINED:
        return Reply(body(_invalid(ctx)))
    joined: JsonRow = {}
    for name in dict.fromkeys(names):
        spec = COMMANDS.get(name)
        if spec is None:
            section = _invalid(ctx)
        elif spec.read is None or not spec.joinable:
            section = _denied(name, ctx)
        else:
            section = spec.read(state, None, ctx)
        joined[name] = [body(section)]
    joined["id"] = 1
    return Reply(joined)


def handle(request: Request, state: MinerState, *, privileged: bool, when: int) -> Reply | Action:
    """Answer a read command, or plan a privileged one for an allow-listed client."""
    ctx = Ctx(when, f"{PRODUCT} {state.version}", privileged)
    if "+" in request.command:
        return _joined(request.command, state, ctx)
    spec = COMMANDS.get(request.command)
    if spec is None:
        return Reply(body(_invalid(ctx)))
    if spec.read is not None:
        return Reply(body(spec.read(state, request.parameter, ctx)))
    if not privileged:
        return Reply(body(_denied(request.command, ctx)))
    planned = plan(request.command, state, request.parameter, ctx)
    return planned if isinstance(planned, Action) else Reply(body(planned))


def denied(reply: Reply) -> bool:
    """Whether ``reply`` refuses a privileged command (for the shell's audit log)."""
    status = reply.body.get("STATUS")
    return isinstance(status, list) and bool(status) and status[0].get("Code") == Code.ACCDENY


def handle_bytes(data: bytes, state: MinerState, *, privileged: bool, when: int) -> Reply | Action:
    """:func:`parse_request` then :func:`handle`; parse errors become E replies."""
    parsed = parse_request(data)
    if isinstance(parsed, tuple):
        code, msg = parsed
        return error_reply(code, msg, when=when, version=state.version)
    return handle(parsed, state, privileged=privileged, when=when)


_DONE: Mapping[ActionKind, tuple[int, str]] = {
    ActionKind.SWITCH_POOL: (Code.SWITCHP, "Switching to pool {index}:'{target}'"),
    ActionKind.ENABLE_POOL: (Code.ENAPOOL, "Enabling pool {index}:'{target}'"),
    ActionKind.DISABLE_POOL: (Code.DISPOOL, "Disabling pool {index}:'{target}'"),
    ActionKind.ADD_POOL: (Code.ADDPOOL, "Added pool {index}: '{target}'"),
    ActionKind.ASC_SET: (Code.ASCSETOK, "ASC {index} set OK"),
}


def action_reply(action: Action, outcome: ControlOutcome, *, when: int, version: str) -> Reply:
    """Word the outcome of a privileged command as cgminer would."""
    if action.kind is ActionKind.RESTART:
        return Reply({"STATUS": "RESTART"})
    if action.kind is ActionKind.QUIT:
        return Reply({"STATUS": "BYE"})
    ctx = Ctx(when, f"{PRODUCT} {version}", True)
    code, template = _DONE[action.kind]
    if not outcome.ok:
        if action.kind is ActionKind.ASC_SET:
            msg = f"ASC {action.index} set failed: {outcome.error}"
            return Reply(body(Section(status(ctx, Sev.ERROR, Code.ASCSETERR, msg))))
        msg = f"{action.kind.value} failed: {outcome.error}"
        return Reply(body(Section(status(ctx, Sev.ERROR, code, msg))))
    index = outcome.value if action.kind is ActionKind.ADD_POOL else action.index
    msg = template.format(index=index, target=action.target)
    return Reply(body(Section(status(ctx, Sev.SUCCESS, code, msg))))
