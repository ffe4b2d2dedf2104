"""The cgminer RPC API without I/O: request bytes in, reply bytes or a control action out.

Monitoring tools (pyasic, cgminer exporters, miner dashboards) speak this protocol, so the
replies follow cgminer 4.13's ``api.c``: a ``STATUS`` object (S/I/W/E, When, Code, Msg,
Description), one upper-case section per command, numbers unquoted, ``"id":1``, and a
NUL after the JSON. Multi-command requests (``summary+devs``) wrap each section in a
one-element array keyed by the command name, as cgminer's code (not its README) does.

Two deliberate departures: text requests (``cmd|param``) also get JSON replies, and
``summary`` carries the Bitmain-fork keys ``GHS 5s``/``GHS av`` next to the ``MHS`` ones,
because pyasic reads only ``GHS 5s``. ``MHS 5s`` is the 1-minute rate: a 5-second
estimate from a handful of nonces would be noise.

Privileged commands never run here: :func:`handle` returns an :class:`Action` the shell
executes (only for allow-listed clients), then :func:`action_reply` words the outcome.
The ``addpool`` password travels as a :class:`Secret` and is never echoed.
"""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratum_client.api.model import ControlOutcome, DeviceState, MinerState, PoolStatus
from stratum_client.secrets import Secret
from stratum_client.units import GIGA, MEGA, in_unit

__all__ = [
    "API_VERSION",
    "CGMINER_COMPAT",
    "MAX_REPLY",
    "MAX_REQUEST",
    "Action",
    "ActionKind",
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

MAX_REQUEST = 4096
"""Bytes; cgminer itself reads one buffer of about this size."""
MAX_REPLY = 1 << 20
MAX_JOINED = 16
"""Commands in one ``a+b+…`` request."""
API_VERSION = "3.7"
CGMINER_COMPAT = "4.13.6"
"""The cgminer release whose API this one mirrors (shown as ``VERSION[0].CGMiner``)."""
PRODUCT = "stratum-client"
MAX_MHZ = 2000.0

JsonRow = dict[str, object]


class Sev(enum.StrEnum):
    SUCCESS = "S"
    INFO = "I"
    WARNING = "W"
    ERROR = "E"


class Code(enum.IntEnum):
    """cgminer's message codes (``api.c``), so scripts that switch on ``Code`` keep working."""

    POOL = 7
    NOPOOL = 8
    DEVS = 9
    NODEVS = 10
    SUMM = 11
    INVCMD = 14
    MISID = 15
    VERSION = 22
    INVJSON = 23
    MISCMD = 24
    MISPID = 25
    INVPID = 26
    SWITCHP = 27
    MINECONFIG = 33
    ACCDENY = 45
    ENAPOOL = 47
    DISPOOL = 48
    ALRENAP = 49
    ALRDISP = 50
    MISPDP = 52
    INVPDP = 53
    ADDPOOL = 55
    DEVDETAILS = 69
    MINESTATS = 70
    MISCHK = 71
    CHECK = 72
    NUMASC = 104
    ASCNON = 105
    ASCDEV = 106
    INVASC = 107
    MISASCOPT = 116
    ASCHELP = 118
    ASCSETOK = 119
    ASCSETERR = 120


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request; ``command`` may still hold ``+``-joined names."""

    command: str
    parameter: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON reply body (a dict, or for restart/quit cgminer's bare status)."""

    body: Mapping[str, object]

    def encode(self) -> bytes:
        """Compact ASCII JSON plus the NUL cgminer clients expect."""
        data = json.dumps(self.body, separators=(",", ":"), allow_nan=False).encode()
        return data + b"\x00"


class ActionKind(enum.StrEnum):
    SWITCH_POOL = "switchpool"
    ENABLE_POOL = "enablepool"
    DISABLE_POOL = "disablepool"
    ADD_POOL = "addpool"
    RESTART = "restart"
    QUIT = "quit"
    SET_FREQUENCY = "ascset"


@dataclass(frozen=True, slots=True)
class Action:
    """A validated privileged command for the shell to run against ``MinerControl``."""

    kind: ActionKind
    index: int = -1
    """Pool index (pool commands) or ASC index (``ascset``)."""
    target: str = ""
    """Pool URL or device name, for the reply and the control call."""
    mhz: float = 0.0
    user: str = ""
    password: Secret | None = None

    @property
    def replies_first(self) -> bool:
        """restart/quit answer before acting: afterwards nobody may be listening."""
        return self.kind in (ActionKind.RESTART, ActionKind.QUIT)


@dataclass(frozen=True, slots=True)
class _Ctx:
    when: int
    description: str
    privileged: bool


@dataclass(frozen=True, slots=True)
class _Section:
    status: JsonRow
    key: str | None = None
    rows: tuple[JsonRow, ...] = ()


# --------------------------------------------------------------------------- numbers


def _num(value: float, digits: int) -> float:
    """Rounded, and never NaN/inf (which JSON cannot carry)."""
    return round(value, digits) if math.isfinite(value) else 0.0


def _pct(part: float, whole: float) -> float:
    return _num(part / whole * 100.0, 4) if whole > 0 else 0.0


def _mhs(hps: float) -> float:
    return in_unit(hps, MEGA)


def _ghs(hps: float) -> float:
    return in_unit(hps, GIGA)


def _diff(value: float) -> float:
    return _num(value, 8)


# --------------------------------------------------------------------------- framing


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


def _status(ctx: _Ctx, sev: Sev, code: int, msg: str, *, described: bool = True) -> JsonRow:
    status: JsonRow = {"STATUS": str(sev), "When": ctx.when, "Code": int(code), "Msg": msg}
    if described:
        status["Description"] = ctx.description
    return status


def _body(section: _Section) -> JsonRow:
    body: JsonRow = {"STATUS": [section.status]}
    if section.key is not None:
        body[section.key] = list(section.rows)
    body["id"] = 1
    return body


def error_reply(code: int, msg: str, *, when: int, version: str) -> Reply:
    """A lone E status, e.g. for a rate-limited or oversized request."""
    ctx = _Ctx(when, f"{PRODUCT} {version}", False)
    return Reply(_body(_Section(_status(ctx, Sev.ERROR, code, msg))))


# --------------------------------------------------------------------------- parsing


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


def _index(parameter: str | None) -> int | None:
    """A small non-negative integer, as the pool/device id parameters need."""
    text = (parameter or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    return int(text)


def _split_escaped(text: str) -> list[str]:
    """Split on commas; a backslash escapes the next character (cgminer's addpool rule)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


# --------------------------------------------------------------------------- read commands


def _pool_url(pool: PoolStatus) -> str:
    """pyasic knows stratum+tcp/stratum+ssl only, so the tls alias is shown as ssl."""
    scheme, sep, rest = pool.url.partition("://")
    return f"stratum+ssl://{rest}" if sep and scheme == "stratum+tls" else pool.url


def _pool_status(pool: PoolStatus) -> str:
    return {"active": "Alive", "standby": "Alive", "disabled": "Disabled"}.get(pool.state, "Dead")


def _version(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    row: JsonRow = {"CGMiner": CGMINER_COMPAT, "API": API_VERSION, PRODUCT: state.version}
    return _Section(_status(ctx, Sev.SUCCESS, Code.VERSION, "CGMiner versions"), "VERSION", (row,))


def _config(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    row: JsonRow = {
        "ASC Count": len(state.devices),
        "PGA Count": 0,
        "Pool Count": len(state.pools),
        "Strategy": "Failover",
        "Log Interval": 60,
        "Device Code": "ASC ",
        "OS": "Linux",
        "Hotplug": "None",
    }
    return _Section(_status(ctx, Sev.SUCCESS, Code.MINECONFIG, "CGMiner config"), "CONFIG", (row,))


def _summary_row(state: MinerState) -> JsonRow:
    elapsed = max(state.elapsed, 0.0)
    minutes = elapsed / 60.0
    rate = state.hashrate
    diff1 = sum(device.diff1_work for device in state.devices)
    shares_diff = state.difficulty_accepted + state.difficulty_rejected + state.difficulty_stale
    return {
        "Elapsed": int(elapsed),
        "MHS av": _mhs(rate.average),
        "MHS 5s": _mhs(rate.m1),
        "MHS 1m": _mhs(rate.m1),
        "MHS 5m": _mhs(rate.m5),
        "MHS 15m": _mhs(rate.m15),
        "GHS 5s": _ghs(rate.m1),
        "GHS av": _ghs(rate.average),
        "Found Blocks": state.found_blocks,
        "Getworks": 0,
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Utility": _num(state.accepted / minutes, 2) if minutes > 0 else 0.0,
        "Discarded": 0,
        "Stale": state.stale,
        "Get Failures": sum(pool.failures for pool in state.pools),
        "Local Work": 0,
        "Remote Failures": 0,
        "Network Blocks": 0,
        "Total MH": _num(rate.average * elapsed / 1e6, 4),
        "Work Utility": _num(diff1 / minutes, 2) if minutes > 0 else 0.0,
        "Difficulty Accepted": _diff(state.difficulty_accepted),
        "Difficulty Rejected": _diff(state.difficulty_rejected),
        "Difficulty Stale": _diff(state.difficulty_stale),
        "Best Share": int(_num(state.best_share, 0)),
        "Device Hardware%": _pct(state.hw_errors, state.hw_errors + diff1),
        "Device Rejected%": _pct(state.difficulty_rejected, diff1),
        "Pool Rejected%": _pct(state.difficulty_rejected, shares_diff),
        "Pool Stale%": _pct(state.difficulty_stale, shares_diff),
        "Last getwork": int(state.when),
    }


def _summary(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    status = _status(ctx, Sev.SUCCESS, Code.SUMM, "Summary")
    return _Section(status, "SUMMARY", (_summary_row(state),))


def _pool_row(pool: PoolStatus) -> JsonRow:
    hostport = pool.url.partition("://")[2] or pool.url
    difficulty = _diff(pool.difficulty or 0.0)
    shares = pool.accepted + pool.rejected
    return {
        "POOL": pool.index,
        "Name": pool.name,
        "URL": _pool_url(pool),
        "Status": _pool_status(pool),
        "Priority": pool.priority,
        "Quota": 1,
        "Long Poll": "N",
        "Getworks": 0,
        "Accepted": pool.accepted,
        "Rejected": pool.rejected,
        "Works": 0,
        "Discarded": 0,
        "Stale": pool.stale,
        "Get Failures": pool.failures,
        "Remote Failures": 0,
        "User": pool.user,
        "Last Share Time": 0,
        "Diff1 Shares": 0,
        "Proxy Type": "",
        "Proxy": "",
        "Difficulty Accepted": 0.0,
        "Difficulty Rejected": 0.0,
        "Difficulty Stale": 0.0,
        "Last Share Difficulty": 0.0,
        "Work Difficulty": difficulty,
        "Has Stratum": True,
        "Stratum Active": pool.state == "active",
        "Stratum URL": hostport,
        "Stratum Difficulty": difficulty,
        "Has Vmask": pool.version_mask != 0,
        "Has GBT": False,
        "Best Share": 0,
        "Pool Rejected%": _pct(pool.rejected, shares),
        "Pool Stale%": _pct(pool.stale, shares),
        "Bad Work": 0,
        "Current Block Height": 0,
        "Current Block Version": 0,
        "Connects": pool.connects,
        "Last Error": pool.last_error,
    }


def _pools(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    if not state.pools:
        return _Section(_status(ctx, Sev.ERROR, Code.NOPOOL, "No pools"))
    status = _status(ctx, Sev.SUCCESS, Code.POOL, f"{len(state.pools)} Pool(s)")
    return _Section(status, "POOLS", tuple(_pool_row(pool) for pool in state.pools))


def _device_row(index: int, device: DeviceState, state: MinerState) -> JsonRow:
    rate = device.hashrate
    elapsed = max(device.elapsed, 0.0)
    minutes = elapsed / 60.0
    last_share = int(device.last_share_at or 0)
    active = state.active_pool
    return {
        "ASC": index,
        "Name": device.model,
        "ID": index,
        "Enabled": "Y" if device.enabled else "N",
        "Status": str(device.status),
        "Temperature": _num(device.temperature_c or 0.0, 2),
        "MHS av": _mhs(rate.average),
        "MHS 5s": _mhs(rate.m1),
        "MHS 1m": _mhs(rate.m1),
        "MHS 5m": _mhs(rate.m5),
        "MHS 15m": _mhs(rate.m15),
        "Accepted": device.accepted,
        "Rejected": device.rejected,
        "Hardware Errors": device.hw_errors,
        "Utility": _num(device.accepted / minutes, 2) if minutes > 0 else 0.0,
        "Last Share Pool": active.index if active else -1,
        "Last Share Time": last_share,
        "Total MH": _num(rate.average * elapsed / 1e6, 4),
        "Diff1 Work": _diff(device.diff1_work),
        "Difficulty Accepted": _diff(device.difficulty_accepted),
        "Difficulty Rejected": _diff(device.difficulty_rejected),
        "Last Share Difficulty": _diff(device.last_share_difficulty),
        "No Device": device.status == "Dead",
        "Last Valid Work": last_share,
        "Device Hardware%": _pct(device.hw_errors, device.hw_errors + device.diff1_work),
        "Device Rejected%": _pct(device.difficulty_rejected, device.diff1_work),
        "Device Elapsed": int(elapsed),
        "Device Name": device.name,
        "Chips": device.chips,
        "Frequency": _num(device.frequency_mhz, 2),
    }


def _devs_section(state: MinerState, ctx: _Ctx, *, enabled_only: bool) -> _Section:
    rows = tuple(
        _device_row(i, device, state)
        for i, device in enumerate(state.devices)
        if device.enabled or not enabled_only
    )
    if not rows:
        return _Section(_status(ctx, Sev.ERROR, Code.NODEVS, "No ASCs"))
    return _Section(_status(ctx, Sev.SUCCESS, Code.DEVS, f"{len(rows)} ASC(s)"), "DEVS", rows)


def _devs(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    return _devs_section(state, ctx, enabled_only=False)


def _edevs(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    return _devs_section(state, ctx, enabled_only=True)


def _asc_index(state: MinerState, parameter: str | None, ctx: _Ctx) -> int | _Section:
    """The ASC id in ``parameter`` (before any comma), or the error section."""
    if not state.devices:
        return _Section(_status(ctx, Sev.ERROR, Code.ASCNON, "No ASCs"))
    if not parameter:
        return _Section(_status(ctx, Sev.ERROR, Code.MISID, "Missing device id parameter"))
    index = _index(parameter.split(",", 1)[0])
    if index is None or index >= len(state.devices):
        shown = parameter.split(",", 1)[0][:16]
        msg = f"Invalid ASC id {shown} - range is 0 - {len(state.devices) - 1}"
        return _Section(_status(ctx, Sev.ERROR, Code.INVASC, msg))
    return index


def _asc(state: MinerState, param: str | None, ctx: _Ctx) -> _Section:
    index = _asc_index(state, param, ctx)
    if isinstance(index, _Section):
        return index
    row = _device_row(index, state.devices[index], state)
    return _Section(_status(ctx, Sev.SUCCESS, Code.ASCDEV, f"ASC{index}"), "ASC", (row,))


def _asccount(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    row: JsonRow = {"Count": len(state.devices)}
    return _Section(_status(ctx, Sev.SUCCESS, Code.NUMASC, "ASC count"), "ASCS", (row,))


def _devdetails(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    rows = tuple(
        {
            "DEVDETAILS": i,
            "Name": device.model,
            "ID": i,
            "Driver": device.model.lower(),
            "Kernel": "",
            "Model": device.model,
            "Device Path": device.name,
            "Chips": device.chips,
        }
        for i, device in enumerate(state.devices)
    )
    status = _status(ctx, Sev.SUCCESS, Code.DEVDETAILS, "Device Details")
    return _Section(status, "DEVDETAILS", rows)


def _stats_device(number: int, index: int, device: DeviceState) -> JsonRow:
    row: JsonRow = {
        "STATS": number,
        "ID": f"ASC{index}",
        "Elapsed": int(max(device.elapsed, 0.0)),
        "Device Name": device.name,
        "Model": device.model,
        "Chips": device.chips,
        "Chips Alive": device.chips_alive,
        "Frequency": _num(device.frequency_mhz, 2),
        "Temp": _num(device.temperature_c or 0.0, 2),
        "Nonces": device.nonces,
        "Dups": sum(chip.duplicates for chip in device.chip_counters),
        "Hardware Errors": device.hw_errors,
    }
    for chip in device.chip_counters:
        row[f"Chip{chip.index} Nonces"] = chip.nonces
        row[f"Chip{chip.index} HW"] = chip.hw_errors
    return row


def _stats(state: MinerState, _param: str | None, ctx: _Ctx) -> _Section:
    """At least two entries with ``Elapsed``: pyasic reads ``STATS[1]["Elapsed"]``."""
    elapsed = int(max(state.elapsed, 0.0))
    rows: list[JsonRow] = [
        {
            "STATS": 0,
            "ID": "STRATUM0",
            "Elapsed": elapsed,
            "Type": PRODUCT,
            "Version": state.version,
        },
        {
            "STATS": 1,
            "ID": "MINER0",
            "Elapsed": elapsed,
            "GHS 5s": _ghs(state.hashrate.m1),
            "GHS av": _ghs(state.hashrate.average),
            "Chips": sum(device.chips for device in state.devices),
            "Chips Alive": sum(device.chips_alive for device in state.devices),
            "Power": _num(state.power_w or 0.0, 2),
            "Mining": str(state.mining),
        },
    ]
    for index, device in enumerate(state.devices):
        rows.append(_stats_device(len(rows), index, device))
    for pool in state.pools:
        rows.append({"STATS": len(rows), "ID": f"POOL{pool.index}", "Elapsed": elapsed})
    status = _status(ctx, Sev.SUCCESS, Code.MINESTATS, "CGMiner stats")
    return _Section(status, "STATS", tuple(rows))


def _check(_state: MinerState, param: str | None, ctx: _Ctx) -> _Section:
    if not param:
        return _Section(_status(ctx, Sev.ERROR, Code.MISCHK, "Missing check cmd"))
    spec = COMMANDS.get(param)
    access = spec is not None and (ctx.privileged or not spec.privileged)
    row: JsonRow = {"Exists": "Y" if spec else "N", "Access": "Y" if access else "N"}
    return _Section(_status(ctx, Sev.SUCCESS, Code.CHECK, "Check command"), "CHECK", (row,))


# --------------------------------------------------------------------------- privileged


def _pool_index(state: MinerState, parameter: str | None, ctx: _Ctx) -> int | _Section:
    if not state.pools:
        return _Section(_status(ctx, Sev.ERROR, Code.NOPOOL, "No pools"))
    if not parameter:
        return _Section(_status(ctx, Sev.ERROR, Code.MISPID, "Missing pool id parameter"))
    index = _index(parameter)
    if index is None or index >= len(state.pools):
        msg = f"Invalid pool id {parameter[:16]} - range is 0 - {len(state.pools) - 1}"
        return _Section(_status(ctx, Sev.ERROR, Code.INVPID, msg))
    return index


def _plan_pool(
    kind: ActionKind, state: MinerState, param: str | None, ctx: _Ctx
) -> Action | _Section:
    index = _pool_index(state, param, ctx)
    if isinstance(index, _Section):
        return index
    pool = state.pools[index]
    if kind is ActionKind.ENABLE_POOL and pool.state != "disabled":
        msg = f"Pool {index}:'{pool.url}' already enabled"
        return _Section(_status(ctx, Sev.INFO, Code.ALRENAP, msg))
    if kind is ActionKind.DISABLE_POOL and pool.state == "disabled":
        msg = f"Pool {index}:'{pool.url}' already disabled"
        return _Section(_status(ctx, Sev.INFO, Code.ALRDISP, msg))
    return Action(kind, index=index, target=pool.url)


def _plan_addpool(param: str | None, ctx: _Ctx) -> Action | _Section:
    if not param:
        return _Section(_status(ctx, Sev.ERROR, Code.MISPDP, "Missing addpool details"))
    parts = _split_escaped(param)
    url = parts[0].strip()
    if len(parts) != 3 or not url or not parts[1] or len(url) > 256 or not url.isprintable():
        msg = "Invalid addpool details: expected URL,USR,PASS"
        return _Section(_status(ctx, Sev.ERROR, Code.INVPDP, msg))
    return Action(ActionKind.ADD_POOL, target=url, user=parts[1], password=Secret(parts[2]))


def _plan_ascset(state: MinerState, param: str | None, ctx: _Ctx) -> Action | _Section:
    index = _asc_index(state, param, ctx)
    if isinstance(index, _Section):
        return index
    fields = (param or "").split(",")
    option = fields[1].strip().lower() if len(fields) > 1 else ""
    if not option:
        return _Section(_status(ctx, Sev.ERROR, Code.MISASCOPT, "Missing option after ASC number"))
    if option == "help":
        msg = f"ASC {index} set help: freq,MHZ"
        return _Section(_status(ctx, Sev.INFO, Code.ASCHELP, msg))
    mhz = _frequency(fields[2] if len(fields) > 2 else "")
    if option != "freq" or mhz is None:
        msg = f"ASC {index} set failed: use freq,MHZ with MHZ from 1 to {MAX_MHZ:g}"
        return _Section(_status(ctx, Sev.ERROR, Code.ASCSETERR, msg))
    return Action(ActionKind.SET_FREQUENCY, index=index, target=state.devices[index].name, mhz=mhz)


def _frequency(text: str) -> float | None:
    try:
        mhz = float(text.strip()[:32])
    except ValueError:
        return None
    return mhz if math.isfinite(mhz) and 1.0 <= mhz <= MAX_MHZ else None


def _plan(name: str, state: MinerState, param: str | None, ctx: _Ctx) -> Action | _Section:
    kind = ActionKind(name)
    if kind in (ActionKind.SWITCH_POOL, ActionKind.ENABLE_POOL, ActionKind.DISABLE_POOL):
        return _plan_pool(kind, state, param, ctx)
    if kind is ActionKind.ADD_POOL:
        return _plan_addpool(param, ctx)
    if kind is ActionKind.SET_FREQUENCY:
        return _plan_ascset(state, param, ctx)
    return Action(kind)


# --------------------------------------------------------------------------- dispatch

Reader = Callable[[MinerState, str | None, _Ctx], _Section]


@dataclass(frozen=True, slots=True)
class _Spec:
    read: Reader | None
    """``None`` for privileged commands (planned into an Action instead)."""
    joinable: bool

    @property
    def privileged(self) -> bool:
        return self.read is None


COMMANDS: Mapping[str, _Spec] = {
    "version": _Spec(_version, True),
    "config": _Spec(_config, True),
    "summary": _Spec(_summary, True),
    "pools": _Spec(_pools, True),
    "devs": _Spec(_devs, True),
    "edevs": _Spec(_edevs, True),
    "stats": _Spec(_stats, True),
    "devdetails": _Spec(_devdetails, True),
    "asccount": _Spec(_asccount, True),
    "asc": _Spec(_asc, False),
    "check": _Spec(_check, False),
    **{kind.value: _Spec(None, False) for kind in ActionKind},
}


def _denied(name: str, ctx: _Ctx) -> _Section:
    return _Section(_status(ctx, Sev.ERROR, Code.ACCDENY, f"Access denied to '{name}' command"))


def _invalid(ctx: _Ctx) -> _Section:
    return _Section(_status(ctx, Sev.ERROR, Code.INVCMD, "Invalid command", described=False))


def _joined(command: str, state: MinerState, ctx: _Ctx) -> Reply:
    names = [name for name in command.split("+") if name]
    if len(names) > MAX_JOINED:
        return Reply(_body(_invalid(ctx)))
    body: JsonRow = {}
    for name in dict.fromkeys(names):
        spec = COMMANDS.get(name)
        if spec is None:
            section = _invalid(ctx)
        elif spec.read is None or not spec.joinable:
            section = _denied(name, ctx)
        else:
            section = spec.read(state, None, ctx)
        body[name] = [_body(section)]
    body["id"] = 1
    return Reply(body)


def handle(request: Request, state: MinerState, *, privileged: bool, when: int) -> Reply | Action:
    """Answer a read command, or plan a privileged one for an allow-listed client."""
    ctx = _Ctx(when, f"{PRODUCT} {state.version}", privileged)
    if "+" in request.command:
        return _joined(request.command, state, ctx)
    spec = COMMANDS.get(request.command)
    if spec is None:
        return Reply(_body(_invalid(ctx)))
    if spec.read is not None:
        return Reply(_body(spec.read(state, request.parameter, ctx)))
    if not privileged:
        return Reply(_body(_denied(request.command, ctx)))
    planned = _plan(request.command, state, request.parameter, ctx)
    return planned if isinstance(planned, Action) else Reply(_body(planned))


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
    ActionKind.SET_FREQUENCY: (Code.ASCSETOK, "ASC {index} set OK"),
}


def action_reply(action: Action, outcome: ControlOutcome, *, when: int, version: str) -> Reply:
    """Word the outcome of a privileged command as cgminer would."""
    if action.kind is ActionKind.RESTART:
        return Reply({"STATUS": "RESTART"})
    if action.kind is ActionKind.QUIT:
        return Reply({"STATUS": "BYE"})
    ctx = _Ctx(when, f"{PRODUCT} {version}", True)
    code, template = _DONE[action.kind]
    if not outcome.ok:
        failed = Code.ASCSETERR if action.kind is ActionKind.SET_FREQUENCY else code
        msg = f"{action.kind.value} failed: {outcome.error}"
        return Reply(_body(_Section(_status(ctx, Sev.ERROR, failed, msg))))
    index = outcome.value if action.kind is ActionKind.ADD_POOL else action.index
    msg = template.format(index=index, target=action.target)
    return Reply(_body(_Section(_status(ctx, Sev.SUCCESS, code, msg))))


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """Per-client token buckets, bounded in clients; shared by the cgminer and REST shells.

    A LAN scanner or a runaway script must not turn the API into a CPU sink next to
    the mining loop. Time is passed in, so the limiter is testable without sleeping.
    """

    def __init__(self, rate: float = 10.0, burst: float = 20.0, max_clients: int = 1024) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        """Take one token for ``client`` if it has one."""
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed
