"""The REST core's request and response values, free of any HTTP library.

The aiohttp shell (:mod:`.rest_server`) turns a real request into an
:class:`HttpRequest` and sends back whatever :class:`HttpResponse` the routes return, so
routes, fields and the token check are tested without sockets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["MAX_BODY", "HttpRequest", "HttpResponse", "error", "json_response"]

MAX_BODY = 4096
"""Largest request body accepted (a settings PATCH is a few dozen bytes)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the routes see it; header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: int = 0
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, payload: object, *headers: tuple[str, str]) -> HttpResponse:
    """Compact JSON; NaN and infinity are refused (AxeOS clients cannot parse them)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return HttpResponse(status, body, headers=headers)


def error(status: int, message: str, *headers: tuple[str, str]) -> HttpResponse:
    """A JSON error body: ``{"error": message}``."""
    return json_response(status, {"error": message}, *headers)
