"""Validation of the values a pool puts in Stratum params and results.

Every function returns a clean Python value or raises :class:`InputError` whose field
names the offending parameter, so the session can report exactly what was wrong and
carry on (or drop the connection when the value is essential, like the subscribe result).
"""

from __future__ import annotations

import math
import re

from stratum_client.errors import InputError
from stratum_client.protocol.messages import preview
from stratum_client.work.extranonce import MAX_EXTRANONCE2_SIZE

__all__ = [
    "MAX_DIFFICULTY",
    "MAX_EXTRANONCE1_SIZE",
    "MAX_EXTRANONCE2_SIZE",
    "Subscription",
    "arity",
    "difficulty",
    "extranonce1",
    "extranonce2_size",
    "hex_u32",
    "printable",
    "reconnect",
    "subscription",
]

MAX_DIFFICULTY = float(2**224)
"""Above this no hash can qualify (the difficulty-1 target is about 2**224), so a larger
value is a pool bug, not a very hard share target."""

MAX_EXTRANONCE1_SIZE = 32
"""Real pools use 2..8 bytes; the same cap as the work builder, so a subscribe result
it could not use is refused up front rather than on every notify. Extranonce2 sizes
share the work builder's cap (:data:`MAX_EXTRANONCE2_SIZE`, 32; pools use 1..16)."""

Subscription = tuple[str | None, bytes, int]
"""(subscription id for resume, extranonce1, extranonce2 size)."""


_HEX = re.compile(r"[0-9a-fA-F]*")
_DIGITS = re.compile(r"[0-9]{1,5}")
_MAX_WAIT = 10**9
"""Seconds; anything above this (about 30 years) is nonsense rather than a long wait."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hex(value: str) -> bool:
    """Strictly hex digits: no sign, prefix or whitespace, which int() and fromhex allow."""
    return _HEX.fullmatch(value) is not None


def arity(params: list[object], minimum: int, names: str) -> None:
    """Require at least ``minimum`` params; ``names`` documents the expected shape."""
    if len(params) < minimum:
        raise InputError("params", f"expected {names}, got {preview(params)}")


def hex_u32(value: object, field: str) -> int:
    """A 32-bit value written as up to 8 hex digits, as version masks are."""
    if not isinstance(value, str) or not 0 < len(value) <= 8:
        raise InputError(field, f"expected up to 8 hex digits, got {preview(value)}")
    if not _is_hex(value):
        raise InputError(field, f"not hexadecimal: {preview(value)}")
    return int(value, 16)


def extranonce1(value: object, field: str = "extranonce1") -> bytes:
    """Hex-encoded extranonce1 (may be empty; some proxies hand out none)."""
    if not isinstance(value, str) or len(value) > 2 * MAX_EXTRANONCE1_SIZE:
        raise InputError(
            field,
            f"expected a hex string of at most {MAX_EXTRANONCE1_SIZE} bytes, got {preview(value)}",
        )
    if not _is_hex(value) or len(value) % 2:
        raise InputError(field, f"not an even-length hex string: {preview(value)}")
    return bytes.fromhex(value)


def extranonce2_size(value: object, field: str = "extranonce2_size") -> int:
    """Extranonce2 length in bytes, 0..32."""
    if not _is_int(value):
        raise InputError(field, f"expected an integer, got {preview(value)}")
    assert isinstance(value, int)
    if not 0 <= value <= MAX_EXTRANONCE2_SIZE:
        raise InputError(field, f"{value} is outside 0..{MAX_EXTRANONCE2_SIZE} bytes")
    return value


def difficulty(value: object, field: str = "difficulty") -> float:
    """A share difficulty: finite, positive and at most :data:`MAX_DIFFICULTY`."""
    if _is_int(value):
        assert isinstance(value, int)
        if value > MAX_DIFFICULTY:  # checked before float() so huge ints cannot overflow
            raise InputError(field, f"{preview(value)} exceeds the maximum {MAX_DIFFICULTY:g}")
        value = float(value)
    if not isinstance(value, float):
        raise InputError(field, f"expected a number, got {preview(value)}")
    if not math.isfinite(value) or value <= 0:
        raise InputError(field, f"{value!r} is not a positive finite number")
    if value > MAX_DIFFICULTY:
        raise InputError(field, f"{value:g} exceeds the maximum {MAX_DIFFICULTY:g}")
    return value


def _subscription_id(details: object) -> str | None:
    """The id from ``[["mining.notify", id], ...]`` (or the first pair, or one bare pair)."""
    if not isinstance(details, list) or not details:
        return None
    pairs = [details] if isinstance(details[0], str) else details
    valid = [
        p for p in pairs if isinstance(p, list) and len(p) >= 2 and isinstance(p[1], str | int)
    ]
    chosen = next((p for p in valid if p[0] == "mining.notify"), valid[0] if valid else None)
    if chosen is None or isinstance(chosen[1], bool):
        return None
    return str(chosen[1])


def subscription(result: object) -> Subscription:
    """Parse ``[[["mining.notify", id], ...], extranonce1_hex, extranonce2_size]``."""
    if not isinstance(result, list) or len(result) < 3:
        raise InputError(
            "result",
            f"expected [subscriptions, extranonce1, extranonce2_size], got {preview(result)}",
        )
    en1 = extranonce1(result[1])
    en2_size = extranonce2_size(result[2])
    return _subscription_id(result[0]), en1, en2_size


def _host(value: object) -> str | None:
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) > 255
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise InputError("host", f"expected a host name, got {preview(value)}")
    return value


def _port(value: object) -> int | None:
    if value is None or value == "":
        return None
    port = value if _is_int(value) else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        port = int(value)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputError("port", f"expected a TCP port (int or string), got {preview(value)}")
    return port


def _wait(value: object) -> float:
    if value is None or value == "":
        return 0.0
    seconds: float | None = None
    if _is_int(value) or isinstance(value, float):
        assert isinstance(value, int | float)
        seconds = float(min(value, _MAX_WAIT + 1))  # min() first: float(10**400) overflows
    elif isinstance(value, str) and len(value) <= 20:
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
    if seconds is None or not 0 <= seconds <= _MAX_WAIT:
        raise InputError("wait", f"expected non-negative seconds, got {preview(value)}")
    return seconds


def reconnect(params: list[object]) -> tuple[str | None, int | None, float]:
    """``client.reconnect [host?, port?, wait?]``; every element optional, port int or str."""
    padded = [*params[:3], None, None, None]
    return _host(padded[0]), _port(padded[1]), _wait(padded[2])


def printable(value: object, field: str) -> str:
    """Pool text for display, with control characters (terminal escapes) neutralised."""
    if not isinstance(value, str):
        raise InputError(field, f"expected a string, got {preview(value)}")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)
