"""The stateless half of a session: answers to the pool, verdicts from its replies.

Nothing here reads or changes session state, so :class:`~stratum_client.protocol.PoolSession`
keeps only what does.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import get_type_hints

from stratum_client.protocol import events as ev
from stratum_client.protocol import params as wire
from stratum_client.protocol.codec import encode
from stratum_client.protocol.events import Output, SendBytes
from stratum_client.protocol.messages import Notification, Response, StratumError, preview
from stratum_client.protocol.settings import SessionSettings
from stratum_client.protocol.tracker import Pending

__all__ = [
    "EXTRANONCE_SUBSCRIBE",
    "METHOD_NOT_FOUND",
    "SUBMIT",
    "SUGGEST_DIFFICULTY",
    "answer",
    "on_optional_reply",
    "on_ping",
    "on_reconnect",
    "on_show_message",
    "on_submit_reply",
    "optional_requests",
    "refusal",
    "scrubbed",
    "timed_out",
    "unknown_method",
]

SUBMIT = "mining.submit"
SUGGEST_DIFFICULTY = "mining.suggest_difficulty"
EXTRANONCE_SUBSCRIBE = "mining.extranonce.subscribe"
METHOD_NOT_FOUND = -32601
"""JSON-RPC's code, sent in the ``[code, message, null]`` form every Stratum pool parses."""
_SCRUB_MIN = 4  # shorter passwords ("x") are placeholders, not secrets


def reply(message: Notification, result: object, error: StratumError | None = None) -> SendBytes:
    data = encode(Response(message.id, result, error))
    label = "method-not-found" if error else message.method  # never echo arbitrary text
    return SendBytes(data, f"reply:{label}")


def answer(message: Notification, result: str) -> Output:
    """The reply to a pool's request, or a violation if it sent no id to answer."""
    if not message.expects_reply:
        return ev.ProtocolViolation(f"{message.method} without an id cannot be answered")
    return reply(message, result)


def unknown_method(message: Notification) -> list[Output]:
    note = ev.ProtocolViolation(
        f"ignored unknown method {preview(message.method)} {preview(message.params)}"
    )
    if not message.expects_reply:
        return [note]
    error = StratumError(METHOD_NOT_FOUND, f"Method not found: {message.method}")
    return [reply(message, None, error), note]


def optional_requests(settings: SessionSettings) -> list[tuple[str, list[object]]]:
    """What to ask after authorize (ckpool ignores suggest_difficulty sent before it)."""
    out: list[tuple[str, list[object]]] = []
    suggest = settings.suggest_difficulty
    if suggest is not None:  # an integer where possible: some pools parse only those
        out.append((SUGGEST_DIFFICULTY, [int(suggest) if suggest.is_integer() else suggest]))
    if settings.extranonce_subscribe:
        out.append((EXTRANONCE_SUBSCRIBE, []))
    return out


def on_reconnect(message: Notification, now: float) -> list[Output]:
    host, port, wait = wire.reconnect(message.params)
    return [ev.ReconnectRequested(host, port, wait)]


def on_show_message(message: Notification, now: float) -> list[Output]:
    wire.arity(message.params, 1, "[text]")
    return [ev.ShowMessage(wire.printable(message.params[0], "text"))]


def on_ping(message: Notification, now: float) -> list[Output]:
    return [answer(message, "pong")]


def on_optional_reply(pending: Pending, response: Response, now: float) -> list[Output]:
    if response.error is None and response.result is not False:
        return []  # many pools answer null here; only an explicit refusal is worth noting
    failure = response.failure() or StratumError(None, "refused")
    return [ev.RequestFailed(pending.method, pending.request_id, failure)]


def on_submit_reply(pending: Pending, response: Response, now: float) -> list[Output]:
    latency = now - pending.sent_at
    error = refusal(response)
    if error is None:
        return [ev.ShareAccepted(pending.request_id, pending.job_id, latency, pending.expired)]
    return [
        ev.ShareRejected(
            pending.request_id,
            pending.job_id,
            error.code,
            error.kind,
            error.message,
            latency,
            pending.expired,
        )
    ]


def refusal(response: Response) -> StratumError | None:
    """None only for ``result: true`` without an error; anything else is a refusal."""
    if response.error is None and response.result is True:
        return None
    return response.failure() or StratumError(None, f"unexpected result {preview(response.result)}")


def timed_out(pending: Pending, now: float) -> ev.Event:
    waited = now - pending.sent_at
    if pending.method == SUBMIT:
        return ev.SubmitTimedOut(pending.request_id, pending.job_id, waited)
    return ev.RequestTimedOut(pending.method, pending.request_id, waited)


def scrubbed(outputs: list[Output], password: str) -> list[Output]:
    """Pools sometimes echo credentials in errors; keep the password out of events."""
    if len(password) < _SCRUB_MIN:
        return outputs
    return [_scrub_event(o, password) if isinstance(o, ev.Event) else o for o in outputs]


_TEXT_TYPES: frozenset[object] = frozenset({str, StratumError, str | None, StratumError | None})
_TEXT_FIELDS: dict[type[ev.Event], tuple[str, ...]] = {}


def _text_fields(kind: type[ev.Event]) -> tuple[str, ...]:
    """The fields of an event type that can carry pool text (jobs and numbers cannot)."""
    names = _TEXT_FIELDS.get(kind)
    if names is None:
        hints = get_type_hints(kind)
        names = tuple(f.name for f in fields(kind) if hints[f.name] in _TEXT_TYPES)
        _TEXT_FIELDS[kind] = names
    return names


def _scrub_event(event: ev.Event, password: str) -> ev.Event:
    changes: dict[str, object] = {}
    for name in _text_fields(type(event)):
        value = getattr(event, name)
        if isinstance(value, str) and password in value:
            changes[name] = value.replace(password, "***")
        elif isinstance(value, StratumError) and password in value.message:
            changes[name] = replace(value, message=value.message.replace(password, "***"))
    return replace(event, **changes) if changes else event
