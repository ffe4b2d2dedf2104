"""Converters for the config's own kinds of value: hosts, stratum URLs, listen
addresses, networks and secrets given inline, by environment variable or by file.

Each takes the dotted key and the raw TOML value and returns the typed value or raises
a :class:`ConfigError` that shows what was written (credentials masked) and what was
expected, like the generic converters in :mod:`stratum_client.tomlschema`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from stratum_client import tomlschema as ts
from stratum_client.config_schema import IPNetwork, ListenAddress
from stratum_client.errors import ConfigError
from stratum_client.secrets import Secret, read_secret_env, read_secret_file
from stratum_client.tomlschema import Table

__all__ = ["URL_EXPECTED", "host", "listen", "networks", "secret", "stratum_url"]


def secret(table: Table, name: str) -> Secret | None:
    """``name``, ``name_env`` or ``name_file`` (at most one); None if absent or bad (noted)."""
    return table.ctx.problems.attempt(lambda: _read_secret(table, name), None)


def _read_secret(table: Table, name: str) -> Secret | None:
    given = [n for n in (name, f"{name}_env", f"{name}_file") if n in table.data]
    if len(given) > 1:
        raise ConfigError(table.key(given[1]), f"conflicts with {given[0]}; set only one")
    if not given:
        return None
    key = table.key(given[0])
    raw = table.data[given[0]]
    if not isinstance(raw, str):
        raise ConfigError(key, f"is not a string (value hidden); expected a {given[0]} string")
    if given[0].endswith("_env"):
        return read_secret_env(key, raw, table.ctx.env)
    if given[0].endswith("_file"):
        return read_secret_file(key, raw, table.ctx.base_dir, table.ctx.env)
    return Secret(raw)


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_SCHEMES = {"stratum+tcp": False, "stratum+ssl": True, "stratum+tls": True}
URL_EXPECTED = "stratum+tcp://, stratum+ssl:// or stratum+tls://HOST:PORT"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None
    return True


def host(key: str, value: object) -> str:
    name = ts.text(key, value)
    if not _valid_host(name):
        raise ts.bad(key, value, "is not a host name or IP address", "a host name or IP address")
    return name


def _split_host_port(key: str, value: str, shown: str, expected: str) -> tuple[str, int]:
    """Host and port from the authority part of ``value``; errors quote ``shown``."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigError(key, f"{shown!r} has an invalid port; expected {expected}") from None
    if parts.username is not None or parts.password is not None:
        problem = "has credentials in it; put them in user and password instead"
        raise ConfigError(key, f"{shown!r} {problem}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(key, f"{shown!r} has a path, query or fragment; expected {expected}")
    host = parts.hostname or ""
    if not _valid_host(host):
        raise ConfigError(key, f"{shown!r} has no valid host; expected {expected}")
    if port is None or not 1 <= port <= 65535:
        raise ConfigError(key, f"{shown!r} has no port from 1 to 65535; expected {expected}")
    return host, port


def stratum_url(key: str, value: object) -> tuple[str, bool, str, int]:
    """``(normalised url, tls, host, port)``; any password in the URL stays masked."""
    url = ts.string(key, value).strip()
    shown = ts.mask_userinfo(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ConfigError(key, f"{shown!r} is not a stratum URL; expected {URL_EXPECTED}")
    host, port = _split_host_port(key, url, shown, URL_EXPECTED)
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}:{port}", _SCHEMES[scheme], host, port


def listen(key: str, value: object) -> ListenAddress:
    raw = ts.text(key, value)
    host, port = _split_host_port(key, f"//{raw}", raw, "HOST:PORT, e.g. 127.0.0.1:4028")
    return ListenAddress(host, port)


def networks(key: str, value: object) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list):
        raise ts.bad(key, value, "is not a list", 'a list of CIDR strings, e.g. ["127.0.0.1/32"]')
    found: list[IPNetwork] = []
    for i, item in enumerate(value):
        cidr = ts.string(f"{key}[{i}]", item)
        try:
            found.append(ipaddress.ip_network(cidr))
        except ValueError as exc:
            problem = f"is not a network ({exc})"
            raise ts.bad(f"{key}[{i}]", item, problem, "CIDR like 10.0.0.0/8") from None
    return tuple(found)
