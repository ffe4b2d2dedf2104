"""Typed Stratum v1 JSON-RPC messages and the many ways pools spell an error.

Stratum v1 is JSON-RPC 1.0 in practice, loosely: pools disagree on how an error looks
(``[code, "msg", traceback]``, ``{"code": .., "message": ..}``, a bare string, or
``result: false`` with a ``"reject-reason"``), so :func:`parse_error` folds them all into
one :class:`StratumError`. :func:`parse_message` checks only the JSON-RPC envelope; what
the params mean is the session's business.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from stratum_client.errors import ProtocolError

__all__ = [
    "JsonId",
    "Message",
    "Notification",
    "Request",
    "Response",
    "StratumError",
    "SubmitErrorCode",
    "clip",
    "parse_error",
    "parse_message",
    "preview",
]

JsonId = int | str | None
"""A JSON-RPC id as pools send it back (we only ever send ints)."""

_PREVIEW_CHARS = 120
_INT_TEXT = re.compile(r"-?[0-9]{1,18}")


def clip(text: str, limit: int = _PREVIEW_CHARS) -> str:
    """Shorten text to quote in an error message."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def preview(value: object, limit: int = _PREVIEW_CHARS) -> str:
    """A JSON value as compact JSON (strings quoted), short enough for an error message."""
    try:
        text = json.dumps(value, separators=(",", ":"), default=repr)
    except ValueError:  # a circular structure cannot come from json.loads, but be safe
        text = repr(value)
    return clip(text, limit)


class SubmitErrorCode(IntEnum):
    """The de-facto ``mining.submit`` error codes (slush's Stratum documentation)."""

    OTHER = 20
    JOB_NOT_FOUND = 21
    """Also what pools answer for stale shares."""
    DUPLICATE_SHARE = 22
    LOW_DIFFICULTY = 23
    UNAUTHORIZED = 24
    NOT_SUBSCRIBED = 25

    @classmethod
    def classify(cls, code: int | None, message: str) -> SubmitErrorCode:
        """Best-effort kind of a reject: the code if known, else keywords in the text.

        Pools that answer ``result: false`` with only a reason ("Stale", "high-hash",
        "Above target") still get their rejects counted under the right heading.
        """
        if code is not None and code in cls._value2member_map_:
            return cls(code)
        lowered = message.lower()
        for keywords, kind in _REJECT_KEYWORDS:
            if any(word in lowered for word in keywords):
                return kind
        return cls.OTHER


_JOB_NOT_FOUND_WORDS = ("stale", "job not found", "job-not-found", "unknown job", "old job")
_LOW_DIFFICULTY_WORDS = (
    "low difficulty",
    "low-difficulty",
    "low diff",
    "above target",
    "high-hash",
)
_REJECT_KEYWORDS: tuple[tuple[tuple[str, ...], SubmitErrorCode], ...] = (
    (_JOB_NOT_FOUND_WORDS, SubmitErrorCode.JOB_NOT_FOUND),
    (("duplicate",), SubmitErrorCode.DUPLICATE_SHARE),
    (_LOW_DIFFICULTY_WORDS, SubmitErrorCode.LOW_DIFFICULTY),
    (("unauthori", "not authori"), SubmitErrorCode.UNAUTHORIZED),
    (("not subscribed", "unsubscribed"), SubmitErrorCode.NOT_SUBSCRIBED),
)


@dataclass(frozen=True, slots=True)
class StratumError:
    """An error a pool reported, whatever form it arrived in.

    ``code`` is the raw integer (unknown codes are preserved) or None when the pool gave
    only text; ``data`` is the third array element (a traceback) or None.
    """

    code: int | None
    message: str
    data: object = None

    @property
    def kind(self) -> SubmitErrorCode:
        """The submit-reject category, inferred from text when the code is unknown."""
        return SubmitErrorCode.classify(self.code, self.message)

    def to_json(self) -> list[object]:
        """The ``[code, message, data]`` array form, which every Stratum pool parses."""
        return [self.code, self.message, self.data]

    def __str__(self) -> str:
        return self.message if self.code is None else f"{self.message} (code {self.code})"


@dataclass(frozen=True, slots=True)
class Request:
    """A client-to-pool call; we number ids ourselves so they are always ints."""

    id: int
    method: str
    params: Sequence[object]

    def to_json(self) -> dict[str, object]:
        """The wire object."""
        return {"id": self.id, "method": self.method, "params": list(self.params)}


@dataclass(frozen=True, slots=True)
class Response:
    """A reply to a request (ours, or our answer to a pool's ``client.get_version``)."""

    id: JsonId
    result: object
    error: StratumError | None = None
    reject_reason: str | None = None
    """The non-standard top-level ``"reject-reason"`` some pools add to a false result."""

    def failure(self) -> StratumError | None:
        """The error this reply reports, also when it is only ``result: false`` / null."""
        if self.error is not None:
            return self.error
        if self.result is False or self.result is None:
            reason = self.reject_reason or f"result was {preview(self.result)}"
            return StratumError(None, reason)
        return None

    def to_json(self) -> dict[str, object]:
        """The wire object."""
        error = None if self.error is None else self.error.to_json()
        return {"id": self.id, "result": self.result, "error": error}


@dataclass(frozen=True, slots=True)
class Notification:
    """A pool-to-client call; an id other than None means the pool wants a reply."""

    method: str
    params: list[object]
    id: JsonId = None

    @property
    def expects_reply(self) -> bool:
        """Whether this is really a request (``client.get_version``, ``mining.ping``)."""
        return self.id is not None


Message = Notification | Response
"""What the codec yields for each line a pool sends."""


def _int_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else preview(value)


def _error_from_list(items: list[object]) -> StratumError:
    code = _int_code(items[0])
    if code is None:  # ["message", ...] with no code at all
        return StratumError(None, _text(items[0]), items[1] if len(items) > 1 else None)
    message = _text(items[1]) if len(items) > 1 else f"error {code}"
    return StratumError(code, message, items[2] if len(items) > 2 else None)


def _error_from_dict(fields: dict[str, object]) -> StratumError:
    code = _int_code(fields.get("code"))
    message = fields.get("message", fields.get("msg"))
    text = _text(message) if message is not None else preview(fields)
    return StratumError(code, text, fields.get("data", fields.get("traceback")))


def parse_error(value: object) -> StratumError | None:
    """Fold every error form pools use into a :class:`StratumError` (None for no error).

    ``null``, ``false`` and empty containers/strings mean "no error": pools that send
    ``"error": []`` alongside ``"result": true`` are common enough to accept.
    """
    if value is None or value is False or value in ("", [], {}):
        return None
    if isinstance(value, list):
        return _error_from_list(value)
    if isinstance(value, dict):
        return _error_from_dict(value)
    if isinstance(value, str):
        return StratumError(None, value)
    code = _int_code(value)
    return StratumError(code, f"error {preview(value)}")


def _parse_id(obj: dict[str, object]) -> JsonId:
    value = obj.get("id")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ProtocolError(f"JSON-RPC id must be an integer, string or null, got {preview(value)}")


def _parse_notification(obj: dict[str, object], msg_id: JsonId) -> Notification:
    method = obj["method"]
    if not isinstance(method, str):
        raise ProtocolError(f"JSON-RPC method must be a string, got {preview(method)}")
    params = obj.get("params")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ProtocolError(f"{method}: params must be a JSON array, got {preview(params)}")
    return Notification(method=method, params=params, id=msg_id)


def _parse_response(obj: dict[str, object], msg_id: JsonId) -> Response:
    reason = obj.get("reject-reason")
    return Response(
        id=msg_id,
        result=obj.get("result"),
        error=parse_error(obj.get("error")),
        reject_reason=None if reason is None else _text(reason),
    )


def parse_message(obj: object) -> Message:
    """Check the JSON-RPC envelope of one decoded line and type it.

    Raises :class:`ProtocolError` naming the problem: not an object, a non-string
    method, params that are not an array, a bad id, or neither method nor result/error.
    """
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {preview(obj)}")
    msg_id = _parse_id(obj)
    if "method" in obj:
        return _parse_notification(obj, msg_id)
    if "result" in obj or "error" in obj:
        return _parse_response(obj, msg_id)
    raise ProtocolError(f"JSON-RPC message has neither method nor result/error: {preview(obj)}")
