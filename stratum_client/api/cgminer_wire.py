"""The cgminer API's reply vocabulary: message codes, status objects, numbers, the NUL frame.

Shared by the read commands (:mod:`.cgminer_reads`), the privileged ones
(:mod:`.cgminer_writes`) and the dispatcher (:mod:`.cgminer`), so that every reply follows
cgminer 4.13's ``api.c`` the same way: a ``STATUS`` object (S/I/W/E, When, Code, Msg,
Description), one upper-case section per command, numbers unquoted, ``"id":1``.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from stratum_client.units import GIGA, MEGA, in_unit

__all__ = [
    "API_VERSION",
    "CGMINER_COMPAT",
    "MAX_MHZ",
    "MAX_REPLY",
    "MAX_REQUEST",
    "PRODUCT",
    "Code",
    "Ctx",
    "JsonRow",
    "Reply",
    "Section",
    "Sev",
    "body",
    "diff",
    "error_reply",
    "ghs",
    "mhs",
    "num",
    "pct",
    "small_index",
    "split_escaped",
    "status",
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
class Reply:
    """A JSON reply body (a dict, or for restart/quit cgminer's bare status)."""

    body: Mapping[str, object]

    def encode(self) -> bytes:
        """Compact ASCII JSON plus the NUL cgminer clients expect."""
        data = json.dumps(self.body, separators=(",", ":"), allow_nan=False).encode()
        return data + b"\x00"


@dataclass(frozen=True, slots=True)
class Ctx:
    """What every status object needs: the reply time, the product line, the privilege."""

    when: int
    description: str
    privileged: bool


@dataclass(frozen=True, slots=True)
class Section:
    """One command's reply: its status and, for data commands, its rows."""

    status: JsonRow
    key: str | None = None
    rows: tuple[JsonRow, ...] = ()


# --------------------------------------------------------------------------- numbers


def num(value: float, digits: int) -> float:
    """Rounded, and never NaN/inf (which JSON cannot carry)."""
    return round(value, digits) if math.isfinite(value) else 0.0


def pct(part: float, whole: float) -> float:
    return num(part / whole * 100.0, 4) if whole > 0 else 0.0


def mhs(hps: float) -> float:
    return in_unit(hps, MEGA)


def ghs(hps: float) -> float:
    return in_unit(hps, GIGA)


def diff(value: float) -> float:
    return num(value, 8)


def status(ctx: Ctx, sev: Sev, code: int, msg: str, *, described: bool = True) -> JsonRow:
    status: JsonRow = {"STATUS": str(sev), "When": ctx.when, "Code": int(code), "Msg": msg}
    if described:
        status["Description"] = ctx.description
    return status


def body(section: Section) -> JsonRow:
    body: JsonRow = {"STATUS": [section.status]}
    if section.key is not None:
        body[section.key] = list(section.rows)
    body["id"] = 1
    return body


def error_reply(code: int, msg: str, *, when: int, version: str) -> Reply:
    """A lone E status, e.g. for a rate-limited or oversized request."""
    ctx = Ctx(when, f"{PRODUCT} {version}", False)
    return Reply(body(Section(status(ctx, Sev.ERROR, code, msg))))


def small_index(parameter: str | None) -> int | None:
    """A small non-negative integer, as the pool/device id parameters need."""
    text = (parameter or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    return int(text)


def split_escaped(text: str) -> list[str]:
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
