"""Webhook request bodies: one alert → headers and bytes for generic JSON, ntfy or Discord.

* ``json``: one object with every field, for scripts and home-automation hooks.
* ``ntfy``: ntfy's plain publish: the message as a text body, the title, priority and
  tags as ``Title``/``Priority``/``Tags`` headers (docs.ntfy.sh/publish).
* ``discord``: an execute-webhook body with one embed, cut to Discord's embed limits
  (title 256, description 4096, 25 fields of 256/1024 characters), since Discord refuses
  a whole message that breaks one.

Pure: the host name and the alert's wall-clock time are passed in.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Final

from stratum_client.alerts.config import Format
from stratum_client.alerts.policy import Alert

__all__ = ["Request", "render"]

_PRIORITY: Final = {"block_found": "high", "safe_state": "urgent", "chain_dead": "high"}
"""ntfy priorities by kind (others: ``default``)."""
_TAGS: Final = {
    "block_found": "tada",
    "pool_down": "warning",
    "chain_dead": "skull",
    "rejected_rate": "warning",
    "safe_state": "rotating_light",
}
"""ntfy tags (emoji short codes) by kind."""
_COLOUR: Final = {"block_found": 0x2ECC71, "safe_state": 0xE74C3C, "chain_dead": 0xE74C3C}
"""Discord embed colours by kind (others: amber)."""
_AMBER: Final = 0xF39C12


@dataclass(frozen=True, slots=True)
class Request:
    """What to POST: the body and the headers that describe it."""

    body: bytes
    headers: tuple[tuple[str, str], ...]


def render(alert: Alert, style: Format, *, host: str, at: float) -> Request:
    """The POST for ``alert`` in ``style``; ``at`` is Unix time, ``host`` names the miner."""
    when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
    if style == "ntfy":
        return _ntfy(alert, host)
    if style == "discord":
        return _discord(alert, host, when)
    document = {
        "kind": alert.kind,
        "title": alert.title,
        "message": alert.message,
        "host": host,
        "at": when,
        "details": dict(alert.details),
        "source": "stratum-client",
    }
    return Request(_json(document), (("Content-Type", "application/json"),))


def _ntfy(alert: Alert, host: str) -> Request:
    headers = (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Title", _header(f"{host}: {alert.title}")),
        ("Priority", _PRIORITY.get(alert.kind, "default")),
        ("Tags", f"{_TAGS.get(alert.kind, 'warning')},{alert.kind}"),
    )
    lines = [alert.message, *(f"{name}: {value}" for name, value in alert.details)]
    return Request("\n".join(lines).encode("utf-8"), headers)


def _discord(alert: Alert, host: str, when: str) -> Request:
    fields = [
        {"name": _cut(name, 256), "value": _cut(value or "-", 1024), "inline": True}
        for name, value in alert.details[:24]
    ]
    fields.append({"name": "host", "value": _cut(host, 1024), "inline": True})
    embed = {
        "title": _cut(alert.title, 256),
        "description": _cut(alert.message, 4096),
        "color": _COLOUR.get(alert.kind, _AMBER),
        "timestamp": when,
        "fields": fields,
    }
    document = {"username": "stratum-client", "embeds": [embed]}
    return Request(_json(document), (("Content-Type", "application/json"),))


def _json(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header(text: str) -> str:
    """HTTP header values are Latin-1 on the wire: anything else becomes ``?``."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)
    return _cut(clean, 200)
