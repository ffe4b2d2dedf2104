"""Whether and where to follow a pool's ``client.reconnect``: pure rules, no I/O.

A redirect to another domain is how a hijacked or hostile pool would steal hashrate, so by
default only the configured pool's own domain is followed, and the wait a pool asks for is
capped so it cannot park us for hours.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

__all__ = [
    "MAX_RECONNECT_WAIT",
    "Redirect",
    "accept_reconnect",
    "reconnect_delay",
    "reconnect_target",
    "registrable_domain",
]

MAX_RECONNECT_WAIT = 300.0
"""Cap on a pool's ``client.reconnect`` wait: a pool cannot park us for hours."""

_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org", "ne", "or"})
"""Labels that, under a two-letter country code, form a public suffix (``co.uk``)."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where a honoured ``client.reconnect`` sends us, and after how long."""

    host: str
    port: int
    wait: float


def registrable_domain(host: str) -> str:
    """The part of a host name a pool operator controls: ``eu.pool.example`` → ``pool.example``.

    The last two labels, or three under ``co.uk``-style suffixes (a full public-suffix
    list would be exact; this covers the country-code cases that matter). IP literals
    are returned normalised, so they compare equal only to themselves.
    """
    text = host.strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    labels = text.split(".")
    keep = 2
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        keep = 3
    return ".".join(labels[-keep:])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return True


def accept_reconnect(
    configured_host: str, requested_host: str | None, same_domain_only: bool = True
) -> bool:
    """Whether to follow ``client.reconnect`` to ``requested_host``.

    A redirect to another domain is how a hijacked or hostile pool would steal
    hashrate, so by default only the configured pool's own domain is allowed; an IP
    must match exactly. An empty host means "this pool again".
    """
    if not requested_host or not requested_host.strip():
        return True
    if not same_domain_only:
        return True
    if _is_ip(configured_host) != _is_ip(requested_host):
        return False
    return registrable_domain(configured_host) == registrable_domain(requested_host)


def reconnect_delay(wait: float | int | str | None) -> float:
    """The wait a pool asked for, as seconds in ``0..MAX_RECONNECT_WAIT`` (junk → 0)."""
    if wait is None or wait == "":
        return 0.0
    try:
        seconds = float(wait)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(seconds):
        return MAX_RECONNECT_WAIT if seconds > 0 else 0.0
    return min(max(seconds, 0.0), MAX_RECONNECT_WAIT)


def _port(value: int | str | None) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 5:
            return None
        value = int(value)
    return value if 1 <= value <= 65535 else None


def reconnect_target(
    current: tuple[str, int],
    configured_host: str,
    requested: tuple[str | None, int | str | None, float | int | str | None],
    *,
    same_domain_only: bool = True,
) -> Redirect | None:
    """Where to go for ``client.reconnect [host, port, wait]``, or None to refuse.

    Missing host or port keep the ones of the ``current`` connection; a port that is
    neither an integer nor a digit string is refused along with the request.
    """
    host, port, wait = requested
    if not accept_reconnect(configured_host, host, same_domain_only):
        return None
    new_port = current[1] if port is None or port == "" else _port(port)
    if new_port is None:
        return None
    new_host = host.strip() if host and host.strip() else current[0]
    return Redirect(new_host, new_port, reconnect_delay(wait))
