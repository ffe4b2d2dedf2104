"""Energy signals: MQTT payloads in, fresh numbers (or a reason why not) out.

Sans-IO: the caller passes each payload with the time it arrived, and asks for a value at
a time. Home-automation sensors are messy (``"unavailable"``, kW instead of W, export as
a negative grid power, a number buried in JSON), so every payload goes through one
parser that either yields a finite float or says precisely what was wrong. A bad payload
invalidates the signal until a good one arrives: a sensor that has gone ``unavailable``
must not keep steering the miners with its last reading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CARBON_INTENSITY",
    "GRID_IMPORT",
    "MAX_PAYLOAD_BYTES",
    "PRICE",
    "SITE_SIGNALS",
    "SURPLUS",
    "PathPart",
    "SignalBoard",
    "SignalError",
    "SignalSpec",
    "SignalState",
    "SignalStatus",
    "SignalUpdate",
    "device_power_signal",
    "format_path",
    "parse_path",
    "parse_payload",
]

SURPLUS = "surplus"
"""Export / solar surplus power, W (positive = power available)."""
GRID_IMPORT = "grid_import"
"""Power drawn from the grid, W (positive = importing)."""
CARBON_INTENSITY = "carbon_intensity"
"""Grid carbon intensity, g CO2 per kWh."""
PRICE = "price"
"""Electricity price per kWh, in whatever currency the thresholds use."""
SITE_SIGNALS = (SURPLUS, GRID_IMPORT, CARBON_INTENSITY, PRICE)

MAX_PAYLOAD_BYTES = 64 * 1024
"""Larger payloads are rejected unparsed: no sensor needs more, and parsing costs CPU."""

PathPart = str | int
SignalState = Literal["ok", "stale", "missing", "error"]

_PATH_TOKEN = re.compile(
    r"""\.(?P<key>[^.\[\]'"]+)|\[(?P<index>-?\d+)\]|\[(?P<quote>["'])(?P<qkey>.*?)(?P=quote)\]"""
)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SENSOR_STATES = frozenset({"unavailable", "unknown", "none", "null", "nan", "n/a", "-"})


def device_power_signal(device: str) -> str:
    """The signal name of a device's measured power (e.g. a smart plug)."""
    return f"power.{device}"


def parse_path(text: str) -> tuple[PathPart, ...]:
    """``$.a.b[0]``, ``a.b[0]`` or ``$['odd key'][1]`` → ``("a", "b", 0)``; ValueError if bad."""
    rest = text.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    elif rest and rest[0] not in ".[":
        rest = "." + rest
    if not rest and not text.strip().startswith("$"):
        raise ValueError("an empty path; omit the key to read a plain number")
    parts: list[PathPart] = []
    position = 0
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if match is None:
            raise ValueError(f"cannot parse {text!r} near {rest[position:]!r}")
        index = match.group("index")
        parts.append(int(index) if index is not None else match.group("key") or match["qkey"])
        position = match.end()
    return tuple(parts)


def format_path(path: tuple[PathPart, ...]) -> str:
    """The canonical ``$.a[0]`` spelling, for messages."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


class _PayloadError(ValueError):
    """A payload problem; the message is shown to the user as is."""


def parse_payload(payload: bytes, path: tuple[PathPart, ...] = ()) -> float:
    """The number in ``payload`` (raw, before scaling); raises ValueError saying what's wrong."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise _PayloadError(f"payload is not UTF-8 text (byte {exc.start})") from None
    if not text:
        raise _PayloadError("empty payload")
    if not path and _PLAIN_NUMBER.fullmatch(text):
        return _finite(float(text), text)
    if text.lower() in _SENSOR_STATES:
        raise _PayloadError(f"sensor state is {text!r}, not a number")
    document = _json(text)
    if not path and isinstance(document, dict | list):
        kind = _kind(document)
        raise _PayloadError(f"payload is a JSON {kind}; configure a path to the number")
    return _number(_walk(document, path), format_path(path))


def _json(text: str) -> object:
    def no_constants(name: str) -> object:
        raise _PayloadError(f"JSON constant {name} is not a usable number")

    try:
        return json.loads(text, parse_constant=no_constants)
    except (json.JSONDecodeError, RecursionError):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise _PayloadError(f"neither a number nor valid JSON: {shown!r}") from None


def _walk(document: object, path: tuple[PathPart, ...]) -> object:
    node = document
    for depth, part in enumerate(path):
        where = format_path(path[:depth]) if depth else "the top level"
        node = _index(node, part, where) if isinstance(part, int) else _key(node, part, where)
    return node


def _index(node: object, index: int, where: str) -> object:
    if not isinstance(node, list):
        raise _PayloadError(f"expected a list at {where} for [{index}], got a {_kind(node)}")
    if not -len(node) <= index < len(node):
        raise _PayloadError(f"index [{index}] out of range at {where} (length {len(node)})")
    return node[index]


def _key(node: object, key: str, where: str) -> object:
    if not isinstance(node, dict):
        raise _PayloadError(f"expected an object at {where} for {key!r}, got a {_kind(node)}")
    if key not in node:
        raise _PayloadError(f"key {key!r} missing at {where}")
    return node[key]


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise _PayloadError(f"{where} is {json.dumps(value)}, not a number")
    if isinstance(value, int | float):
        try:
            return _finite(float(value), where)
        except OverflowError:
            raise _PayloadError(f"{where} is too large") from None
    if isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value.strip()):
        return _finite(float(value), where)
    raise _PayloadError(f"{where} is a {_kind(value)} ({_short(value)}), not a number")


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise _PayloadError(f"{where} is not a finite number")
    return value


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "object", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= 30 else shown[:27] + "..."


# --------------------------------------------------------------------------- the board


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """Where one signal comes from and how to turn its payload into a value."""

    name: str
    topic: str
    path: tuple[PathPart, ...] = ()
    """Field inside a JSON payload; empty for a plain number."""
    scale: float = 1.0
    """Multiplier to the signal's unit, e.g. 1000 for a sensor in kW."""
    invert: bool = False
    """Negate: for meters that report export as negative grid power."""
    max_age: float = 60.0
    """Seconds after which the last value is stale and no longer used."""

    def convert(self, payload: bytes) -> float:
        """The scaled value; ValueError says what was wrong with the payload."""
        value = parse_payload(payload, self.path) * self.scale
        if not math.isfinite(value):
            raise ValueError(f"value overflows after scaling by {self.scale:g}")
        return -value if self.invert else value


@dataclass(frozen=True, slots=True)
class SignalUpdate:
    """A payload that yielded a value."""

    name: str
    topic: str
    value: float
    at: float


@dataclass(frozen=True, slots=True)
class SignalError:
    """A payload that did not; ``message`` names the signal, topic and problem."""

    name: str
    topic: str
    problem: str
    at: float

    @property
    def message(self) -> str:
        return f"signal {self.name} (topic {self.topic!r}): {self.problem}"


@dataclass(frozen=True, slots=True)
class SignalStatus:
    """One signal's state for APIs, logs and decision reasons."""

    name: str
    topic: str
    state: SignalState
    value: float | None
    """The last good value, even when stale (for display only)."""
    age: float | None
    problem: str | None


@dataclass(slots=True)
class _Slot:
    spec: SignalSpec
    value: float | None = None
    at: float | None = None
    error: SignalError | None = None


class SignalBoard:
    """The latest value of every configured signal, with staleness and payload errors."""

    def __init__(self, specs: Iterable[SignalSpec]) -> None:
        self._slots: dict[str, _Slot] = {}
        for spec in specs:
            if spec.name in self._slots:
                raise ValueError(f"signal {spec.name!r} configured twice")
            self._slots[spec.name] = _Slot(spec)
        self.link_problem: str | None = None
        """Set by the transport while the broker is unreachable; shown in reasons."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def topics(self) -> tuple[str, ...]:
        """Distinct topics to subscribe to (several signals may share one JSON topic)."""
        return tuple(dict.fromkeys(slot.spec.topic for slot in self._slots.values()))

    def configured(self, name: str) -> bool:
        return name in self._slots

    def feed(self, topic: str, payload: bytes, now: float) -> list[SignalUpdate | SignalError]:
        """Route one message to every signal on ``topic``; never raises."""
        return [
            self.update(name, payload, now)
            for name, slot in self._slots.items()
            if slot.spec.topic == topic
        ]

    def update(self, name: str, payload: bytes, now: float) -> SignalUpdate | SignalError:
        """Parse ``payload`` for signal ``name``; never raises, garbage becomes an error."""
        slot = self._slots.get(name)
        if slot is None:
            return SignalError(name, "", "no such signal is configured", now)
        try:
            value = slot.spec.convert(bytes(payload))
        except (ValueError, TypeError, ArithmeticError) as exc:
            slot.error = SignalError(name, slot.spec.topic, str(exc), now)
            return slot.error
        slot.value, slot.at, slot.error = value, now, None
        return SignalUpdate(name, slot.spec.topic, value, now)

    def value(self, name: str, now: float) -> float | None:
        """The current value, or None when missing, stale or last payload was garbage."""
        slot = self._slots.get(name)
        if slot is None or self._state(slot, now) != "ok":
            return None
        return slot.value

    def updated_at(self, name: str) -> float | None:
        """When the last good value arrived (to tell readings before/after a change)."""
        slot = self._slots.get(name)
        return None if slot is None else slot.at

    def problem(self, name: str, now: float) -> str | None:
        """Why :meth:`value` is None, in words; None when the value is usable."""
        slot = self._slots.get(name)
        if slot is None:
            return f"signal {name} is not configured"
        return self._problem(slot, now)

    def status(self, now: float) -> dict[str, SignalStatus]:
        """Every signal's state, value and age."""
        return {
            name: SignalStatus(
                name=name,
                topic=slot.spec.topic,
                state=self._state(slot, now),
                value=slot.value,
                age=None if slot.at is None else now - slot.at,
                problem=self._problem(slot, now),
            )
            for name, slot in self._slots.items()
        }

    @staticmethod
    def _state(slot: _Slot, now: float) -> SignalState:
        if slot.error is not None:
            return "error"
        if slot.at is None:
            return "missing"
        return "stale" if now - slot.at > slot.spec.max_age else "ok"

    def _problem(self, slot: _Slot, now: float) -> str | None:
        state = self._state(slot, now)
        link = f"; broker: {self.link_problem}" if self.link_problem else ""
        if state == "error" and slot.error is not None:
            return f"{slot.error.message}{link}"
        if state == "missing":
            return f"signal {slot.spec.name}: no value yet on topic {slot.spec.topic!r}{link}"
        if state == "stale" and slot.at is not None:
            age, limit = now - slot.at, slot.spec.max_age
            last = f"last value {age:.0f} s ago (limit {limit:g} s)"
            return f"signal {slot.spec.name} stale: {last}{link}"
        return None
