"""The config file: TOML in, frozen typed dataclasses out, validated once at start.

Everything the daemon reads from ``config.toml`` passes through here, so the rest of the
code trusts its types and ranges. Every problem becomes a :class:`ConfigError` whose
field is the dotted key (``pools[1].url``) and whose message shows the offending value
(secrets never) and what was expected. Unknown keys are errors too: a misspelt
``pasword`` silently falling back to the default would be worse than refusing to start.

Secrets (pool passwords, the MQTT password, the REST token) come inline, from an
environment variable (``*_env``) or from a file (``*_file``, e.g. a systemd credential);
at most one of the three per secret. See ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast
from urllib.parse import urlsplit

from stratum_client import __version__
from stratum_client import tomlschema as ts
from stratum_client.alerts.config import AlertsConfig, parse_alerts
from stratum_client.asic.base import DeviceSpec
from stratum_client.energy.config import EnergyConfig, parse_energy
from stratum_client.errors import ConfigError
from stratum_client.eventloop import EVENT_LOOPS, EventLoopChoice
from stratum_client.logsetup import COMPONENT_LOGGERS, LEVELS
from stratum_client.mqtt_session import Broker
from stratum_client.secrets import Secret, read_secret_env, read_secret_file
from stratum_client.tomlschema import Convert, Table, TableContext
from stratum_client.work.versionroll import (
    DEFAULT_VERSION_BITS_FORM,
    VERSION_BITS_FORMS,
    VersionBitsForm,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApiConfig",
    "Config",
    "DaemonConfig",
    "DeviceConfig",
    "IPNetwork",
    "ListenAddress",
    "MqttConfig",
    "PoolConfig",
    "PoolPolicy",
    "TelemetryConfig",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/stratum-client/config.toml")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LogFormat = Literal["auto", "json", "console"]


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A ``host:port`` a server binds to (IPv6 literals written as ``[::1]:port``)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and ``localhost``: reachable from this box only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """``[daemon]``: logging and where state lives."""

    log_level: str = "info"
    log_format: LogFormat = "auto"
    log_levels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Component (see ``logsetup.COMPONENT_LOGGERS``) → level, overriding ``log_level``."""
    state_dir: Path = Path("/var/lib/stratum-client")
    user_agent: str = f"stratum-client/{__version__}"
    event_loop: EventLoopChoice = "auto"
    """``auto``: uvloop when installed (lower latency), else asyncio's loop; read at start."""


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """One ``[[pools]]`` table; the list order is the failover priority."""

    url: str
    """Normalised ``scheme://host:port``."""
    host: str
    port: int
    tls: bool
    user: str
    password: Secret
    name: str
    """Defaults to ``host:port``; used in logs, the API and telemetry."""
    ca_file: Path | None = None
    tls_verify: bool = True
    suggest_difficulty: float | None = None
    extranonce_subscribe: bool = False
    version_rolling: bool = True
    version_bits_form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM
    """How submits carry the rolled version: ``xor`` (ESP-Miner's) or ``replace``."""


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """``[pool_policy]``: timeouts, backoff and failover behaviour, in seconds."""

    connect_timeout: float = 10.0
    silence_timeout: float = 120.0
    """No message from the pool for this long means the connection is dead."""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    return_to_primary_after: float = 120.0
    """How long a higher-priority pool must stay healthy before we move back to it."""
    primary_probe_interval: float = 60.0
    submit_timeout: float = 30.0
    pending_share_limit: int = 1024
    """Shares kept while no pool is reachable; the oldest are dropped (and counted)."""
    drain_timeout: float = 5.0
    """On SIGTERM, how long to wait for in-flight submits."""
    reconnect_same_domain_only: bool = True
    """Honour ``client.reconnect`` only to the pool's own domain."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One ``[[devices]]`` table: a chain of chips behind one serial link."""

    name: str
    driver: str
    """Registry name; resolved by the daemon, not here, so config loads without drivers."""
    port: str
    chips: int
    frequency_mhz: float | None = None
    ticket_difficulty: float = 256.0
    """Chips round this down to a power of two."""
    difficulty_scale: float = 1.0
    enabled: bool = True
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def to_spec(self) -> DeviceSpec:
        """The driver's view of this table."""
        return DeviceSpec(
            port=self.port,
            chips=self.chips,
            frequency_mhz=self.frequency_mhz,
            ticket_difficulty=self.ticket_difficulty,
            difficulty_scale=self.difficulty_scale,
            options=self.options,
        )


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """``[api]``: the cgminer-compatible TCP API and the REST API."""

    cgminer_enabled: bool = False
    cgminer_listen: ListenAddress = ListenAddress("127.0.0.1", 4028)
    cgminer_allow: tuple[IPNetwork, ...] = (ipaddress.IPv4Network("127.0.0.1/32"),)
    """Clients allowed privileged (state-changing) cgminer commands."""
    rest_enabled: bool = False
    rest_listen: ListenAddress = ListenAddress("127.0.0.1", 8080)
    rest_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[telemetry.mqtt]``: publishing stats to a broker (Home Assistant discovery)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: Secret | None = None
    base_topic: str = "stratum-client"
    discovery_prefix: str = "homeassistant"
    interval: float = 10.0
    client_id: str | None = None

    def broker(self, client_suffix: str = "") -> Broker:
        """The connection part; a second client on the same broker needs its own id."""
        client_id = f"{self.client_id}{client_suffix}" if self.client_id else None
        fields = (self.username, self.password, self.tls, self.ca_file, client_id)
        return Broker(self.host, self.port, *fields)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """``[telemetry]``."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole, validated configuration."""

    pools: tuple[PoolConfig, ...]
    devices: tuple[DeviceConfig, ...]
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    pool_policy: PoolPolicy = field(default_factory=PoolPolicy)
    api: ApiConfig = field(default_factory=ApiConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    energy: EnergyConfig = field(default_factory=lambda: parse_energy({}))
    """``[energy]``: signals, governor policy and ledger (see docs/energy.md)."""
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    source: str = field(default="<string>", compare=False)

    def secrets(self) -> tuple[Secret, ...]:
        """Every secret in the config, for ``logsetup.register_secret``."""
        found = [pool.password for pool in self.pools]
        found += [s for s in (self.api.rest_token, self.telemetry.mqtt.password) if s]
        return tuple(found)


# --------------------------------------------------------------------------- reading


def _secret(table: Table, name: str) -> Secret | None:
    """Read ``name``, ``name_env`` or ``name_file``; at most one may be given."""
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


def _host(key: str, value: object) -> str:
    host = ts.text(key, value)
    if not _valid_host(host):
        raise ts.bad(key, value, "is not a host name or IP address", "a host name or IP address")
    return host


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


def _stratum_url(key: str, value: object) -> tuple[str, bool, str, int]:
    """``(normalised url, tls, host, port)``; any password in the URL stays masked."""
    url = ts.string(key, value).strip()
    shown = ts.mask_userinfo(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ConfigError(key, f"{shown!r} is not a stratum URL; expected {URL_EXPECTED}")
    host, port = _split_host_port(key, url, shown, URL_EXPECTED)
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}:{port}", _SCHEMES[scheme], host, port


def _listen(key: str, value: object) -> ListenAddress:
    raw = ts.text(key, value)
    host, port = _split_host_port(key, f"//{raw}", raw, "HOST:PORT, e.g. 127.0.0.1:4028")
    return ListenAddress(host, port)


def _networks(key: str, value: object) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list):
        raise ts.bad(key, value, "is not a list", 'a list of CIDR strings, e.g. ["127.0.0.1/32"]')
    networks: list[IPNetwork] = []
    for i, item in enumerate(value):
        cidr = ts.string(f"{key}[{i}]", item)
        try:
            networks.append(ipaddress.ip_network(cidr))
        except ValueError as exc:
            problem = f"is not a network ({exc})"
            raise ts.bad(f"{key}[{i}]", item, problem, "CIDR like 10.0.0.0/8") from None
    return tuple(networks)


# --------------------------------------------------------------------------- sections

_DAEMON_KEYS = (
    "log_level", "log_format", "log_levels", "state_dir", "user_agent", "event_loop",
)  # fmt: skip
_POOL_KEYS = (
    "url", "user", "password", "password_env", "password_file", "ca_file", "tls_verify",
    "suggest_difficulty", "extranonce_subscribe", "version_rolling", "version_bits_form",
    "name",
)  # fmt: skip
_DEVICE_KEYS = (
    "name", "driver", "port", "chips", "frequency_mhz", "ticket_difficulty",
    "difficulty_scale", "enabled", "options",
)  # fmt: skip
_API_KEYS = (
    "cgminer_enabled", "cgminer_listen", "cgminer_allow", "rest_enabled", "rest_listen",
    "rest_token", "rest_token_env", "rest_token_file",
)  # fmt: skip
_MQTT_KEYS = (
    "enabled", "host", "port", "tls", "ca_file", "username", "password", "password_env",
    "password_file", "base_topic", "discovery_prefix", "interval", "client_id",
)  # fmt: skip
_TOP_KEYS = ("daemon", "pools", "pool_policy", "devices", "api", "telemetry", "energy", "alerts")

_POLICY_RULES: dict[str, Convert[float]] = {
    "connect_timeout": ts.number(0, lo_open=True),
    "silence_timeout": ts.number(0, lo_open=True),
    "backoff_initial": ts.number(0, lo_open=True),
    "backoff_max": ts.number(0, lo_open=True),
    "return_to_primary_after": ts.number(0),
    "primary_probe_interval": ts.number(0, lo_open=True),
    "submit_timeout": ts.number(0, lo_open=True),
    "drain_timeout": ts.number(0),
}
_POLICY_KEYS = (*_POLICY_RULES, "pending_share_limit", "reconnect_same_domain_only")
_LEVEL = ts.choice(*LEVELS)
_DAEMON_DEFAULTS = DaemonConfig()
_API_DEFAULTS = ApiConfig()
_DRIVER_NAME = ts.matching(r"[A-Za-z][A-Za-z0-9_.-]*", "a driver name such as bm1366")
_DEVICE_NAME = ts.matching(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "letters, digits, '_', '.', '-'")
_TOPIC = ts.matching(r"[^/+#\x00]+(?:/[^/+#\x00]+)*", "an MQTT topic without + or #")


def _daemon(t: Table) -> DaemonConfig:
    levels = t.table("log_levels", tuple(COMPONENT_LOGGERS))
    return DaemonConfig(
        log_level=t.get("log_level", _LEVEL, "info"),
        log_format=cast(
            "LogFormat", t.get("log_format", ts.choice("auto", "json", "console"), "auto")
        ),
        log_levels=MappingProxyType({c: _LEVEL(levels.key(c), v) for c, v in levels.data.items()}),
        state_dir=t.get("state_dir", ts.absolute_path, _DAEMON_DEFAULTS.state_dir),
        user_agent=t.get("user_agent", ts.text, _DAEMON_DEFAULTS.user_agent),
        event_loop=cast("EventLoopChoice", t.get("event_loop", ts.choice(*EVENT_LOOPS), "auto")),
    )


def _pool(t: Table) -> PoolConfig:
    url, tls, host, port = t.require("url", _stratum_url, URL_EXPECTED)
    for name in ("ca_file", "tls_verify"):
        if name in t.data and not tls:
            raise ConfigError(t.key(name), f"only applies to TLS pools, but url is {url!r}")
    rolling = t.get("version_rolling", ts.boolean, True)
    if "version_bits_form" in t.data and not rolling:
        raise ConfigError(t.key("version_bits_form"), "only applies when version_rolling = true")
    return PoolConfig(
        url=url,
        host=host,
        port=port,
        tls=tls,
        user=t.require("user", ts.text, "the pool user (often a payout address)"),
        password=_secret(t, "password") or Secret("x"),
        name=t.get("name", ts.text, f"{host}:{port}"),
        ca_file=t.optional("ca_file", ts.file_in(t.ctx)),
        tls_verify=t.get("tls_verify", ts.boolean, True),
        suggest_difficulty=t.optional("suggest_difficulty", ts.number(0, lo_open=True)),
        extranonce_subscribe=t.get("extranonce_subscribe", ts.boolean, False),
        version_rolling=rolling,
        version_bits_form=t.get("version_bits_form", _version_bits_form, DEFAULT_VERSION_BITS_FORM),
    )


def _version_bits_form(key: str, value: object) -> VersionBitsForm:
    text = ts.string(key, value).lower()
    for form in VERSION_BITS_FORMS:
        if text == form:
            return form
    raise ts.bad(
        key,
        value,
        "is not a version bits form",
        '"xor" (rolled ^ job version: public-pool, ckpool, DATUM) or "replace" '
        "(rolled & mask, BIP310's formula: miningcore, the SRI translator)",
    )


def _pool_policy(t: Table) -> PoolPolicy:
    defaults = PoolPolicy()
    times = {
        name: t.get(name, rule, getattr(defaults, name)) for name, rule in _POLICY_RULES.items()
    }
    policy = PoolPolicy(
        **times,
        pending_share_limit=t.get("pending_share_limit", ts.integer(0, 1_000_000), 1024),
        reconnect_same_domain_only=t.get("reconnect_same_domain_only", ts.boolean, True),
    )
    if policy.backoff_max < policy.backoff_initial:
        raise ts.bad(t.key("backoff_max"), policy.backoff_max, "is below backoff_initial",
                   f"a number >= {policy.backoff_initial:g}")  # fmt: skip
    return policy


def _device(t: Table, index: int) -> DeviceConfig:
    driver = t.require("driver", _DRIVER_NAME, "a driver name such as bm1366")
    return DeviceConfig(
        name=t.get("name", _DEVICE_NAME, f"{driver}-{index}"),
        driver=driver,
        port=t.require("port", ts.text, "a device path such as /dev/ttyACM0 or a pyserial URL"),
        chips=t.require("chips", ts.integer(1, 256), "the number of chips on the chain"),
        frequency_mhz=t.optional("frequency_mhz", ts.number(1, 2000)),
        ticket_difficulty=t.get("ticket_difficulty", ts.number(1), 256.0),
        difficulty_scale=t.get("difficulty_scale", ts.number(0, 1, lo_open=True), 1.0),
        enabled=t.get("enabled", ts.boolean, True),
        options=t.get("options", ts.free_table, MappingProxyType({})),
    )


def _api(t: Table) -> ApiConfig:
    api = ApiConfig(
        cgminer_enabled=t.get("cgminer_enabled", ts.boolean, False),
        cgminer_listen=t.get("cgminer_listen", _listen, _API_DEFAULTS.cgminer_listen),
        cgminer_allow=t.get("cgminer_allow", _networks, _API_DEFAULTS.cgminer_allow),
        rest_enabled=t.get("rest_enabled", ts.boolean, False),
        rest_listen=t.get("rest_listen", _listen, _API_DEFAULTS.rest_listen),
        rest_token=_secret(t, "rest_token"),
    )
    if api.rest_enabled and api.rest_token is None and not api.rest_listen.is_loopback:
        raise ConfigError(
            t.key("rest_token"),
            f"is required when rest_listen ({api.rest_listen}) is reachable from the network",
        )
    return api


def _mqtt(t: Table) -> MqttConfig:
    tls = t.get("tls", ts.boolean, False)
    if "ca_file" in t.data and not tls:
        raise ConfigError(t.key("ca_file"), "only applies when tls = true")
    mqtt = MqttConfig(
        enabled=t.get("enabled", ts.boolean, False),
        host=t.get("host", _host, "127.0.0.1"),
        port=t.get("port", ts.integer(1, 65535), 8883 if tls else 1883),
        tls=tls,
        ca_file=t.optional("ca_file", ts.file_in(t.ctx)),
        username=t.optional("username", ts.text),
        password=_secret(t, "password"),
        base_topic=t.get("base_topic", _TOPIC, f"stratum-client/{socket.gethostname()}"),
        discovery_prefix=t.get("discovery_prefix", _TOPIC, "homeassistant"),
        interval=t.get("interval", ts.number(0, lo_open=True), 10.0),
        client_id=t.optional("client_id", ts.text),
    )
    if mqtt.password is not None and mqtt.username is None:
        raise ConfigError(t.key("username"), "is missing; MQTT sends a password only with one")
    return mqtt


def _unique(items: Sequence[object], attr: str, tables: list[Table]) -> None:
    seen: dict[object, int] = {}
    for index, (item, table) in enumerate(zip(items, tables, strict=True)):
        value = getattr(item, attr)
        if value in seen:
            raise ts.bad(
                table.key(attr), value, f"is already used by [{seen[value]}]", "unique values"
            )
        seen[value] = index


def _build(data: Mapping[str, object], source: str, ctx: TableContext) -> Config:
    top = Table(data, "", _TOP_KEYS, ctx)
    pool_tables = top.array("pools", _POOL_KEYS)
    device_tables = top.array("devices", _DEVICE_KEYS)
    if not pool_tables:
        raise ConfigError("pools", "is missing; expected at least one [[pools]] table")
    if not device_tables:
        raise ConfigError("devices", "is missing; expected at least one [[devices]] table")
    pools = [_pool(t) for t in pool_tables]
    devices = [_device(t, i) for i, t in enumerate(device_tables)]
    _unique(pools, "name", pool_tables)
    _unique(devices, "name", device_tables)
    _unique(devices, "port", device_tables)
    telemetry = top.table("telemetry", ("mqtt",))
    return Config(
        pools=tuple(pools),
        devices=tuple(devices),
        daemon=_daemon(top.table("daemon", _DAEMON_KEYS)),
        pool_policy=_pool_policy(top.table("pool_policy", _POLICY_KEYS)),
        api=_api(top.table("api", _API_KEYS)),
        telemetry=TelemetryConfig(mqtt=_mqtt(telemetry.table("mqtt", _MQTT_KEYS))),
        energy=parse_energy(
            top.get("energy", ts.free_table, MappingProxyType({})),
            device_names=[d.name for d in devices],
        ),
        alerts=parse_alerts(top.get("alerts", ts.free_table, MappingProxyType({}))),
        source=source,
    )


# --------------------------------------------------------------------------- entry points


def parse_config(
    text_or_dict: str | Mapping[str, object],
    *,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate TOML text (or an already-parsed table) into a :class:`Config`.

    ``env`` replaces ``os.environ`` for ``*_env`` secrets and ``$CREDENTIALS_DIRECTORY``;
    ``base_dir`` anchors relative file paths (default: the working directory).
    """
    data = _parse_toml(text_or_dict, source) if isinstance(text_or_dict, str) else text_or_dict
    ctx = TableContext(base_dir or Path.cwd(), os.environ if env is None else env)
    try:
        return _build(data, source, ctx)
    except ConfigError as exc:
        exc.add_note(f"in {source}")
        raise


def load_config(
    path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH, *, env: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config file; relative paths inside it are relative to it."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(file), f"cannot read config file ({exc.strerror or exc})") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(file), f"is not UTF-8 text (byte {exc.start})") from None
    return parse_config(content, source=str(file), env=env, base_dir=file.parent.absolute())


def _parse_toml(content: str, source: str) -> Mapping[str, object]:
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from None
