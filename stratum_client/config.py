"""The config file: TOML in, frozen typed dataclasses out, validated once at start.

Everything the daemon reads from ``config.toml`` passes through here, so the rest of the
code trusts its types and ranges. Every problem becomes a :class:`ConfigError` whose
field is the dotted key (``pools[1].url``) and whose message shows the offending value
(secrets never) and what was expected. Unknown keys are errors too: a misspelt
``pasword`` silently falling back to the default would be worse than refusing to start.
A file with several mistakes is reported with all of them in one error (``.errors``).

Secrets (pool passwords, the MQTT password, the REST token) come inline, from an
environment variable (``*_env``) or from a file (``*_file``, e.g. a systemd credential);
at most one of the three per secret. The dataclasses live in
:mod:`stratum_client.config_schema`, the value converters in
:mod:`stratum_client.config_values`; both are re-exported here. See
``docs/configuration.md``.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast

from stratum_client import config_values as cv
from stratum_client import tomlschema as ts
from stratum_client.alerts.config import parse_alerts
from stratum_client.boards.config import BOARD_KEYS, ParsedBoard, parse_board
from stratum_client.config_lines import key_lines, locate
from stratum_client.config_schema import (
    DEFAULT_CONFIG_PATH,
    ApiConfig,
    Config,
    DaemonConfig,
    DeviceConfig,
    IPNetwork,
    ListenAddress,
    LogFormat,
    MqttConfig,
    PoolConfig,
    PoolPolicy,
    TelemetryConfig,
)
from stratum_client.energy.config import parse_energy
from stratum_client.errors import ConfigError
from stratum_client.eventloop import EVENT_LOOPS, EventLoopChoice
from stratum_client.logsetup import COMPONENT_LOGGERS, LEVELS
from stratum_client.secrets import Secret
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
    "parse_pool",
]

T = TypeVar("T")

# --------------------------------------------------------------------------- sections

_DAEMON_KEYS = (
    "log_level", "log_format", "log_levels", "state_dir", "user_agent", "event_loop",
)  # fmt: skip
_POOL_KEYS = (
    "url", "user", "password", "password_env", "password_file", "ca_file", "tls_verify",
    "suggest_difficulty", "extranonce_subscribe", "version_rolling", "version_bits_form",
    "name", "submit_block_candidates_below_difficulty",
)  # fmt: skip
_DEVICE_KEYS = (
    "name", "driver", "port", "chips", "frequency_mhz", "ticket_difficulty",
    "difficulty_scale", "enabled", "options", *BOARD_KEYS,
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
    url, tls, host, port = t.require("url", cv.stratum_url, cv.URL_EXPECTED)
    for name in ("ca_file", "tls_verify"):
        if name in t.data and not tls:
            t.note(ConfigError(t.key(name), f"only applies to TLS pools, but url is {url!r}"))
    rolling = t.get("version_rolling", ts.boolean, True)
    if "version_bits_form" in t.data and not rolling:
        t.note(ConfigError(t.key("version_bits_form"), "only applies when version_rolling = true"))
    return PoolConfig(
        url=url,
        host=host,
        port=port,
        tls=tls,
        user=t.require("user", ts.text, "the pool user (often a payout address)"),
        password=cv.secret(t, "password") or Secret("x"),
        name=t.get("name", ts.text, f"{host}:{port}"),
        ca_file=t.optional("ca_file", ts.file_in(t.ctx)),
        tls_verify=t.get("tls_verify", ts.boolean, True),
        suggest_difficulty=t.optional("suggest_difficulty", ts.number(0, lo_open=True)),
        extranonce_subscribe=t.get("extranonce_subscribe", ts.boolean, False),
        version_rolling=rolling,
        version_bits_form=t.get("version_bits_form", _version_bits_form, DEFAULT_VERSION_BITS_FORM),
        submit_block_candidates_below_difficulty=t.get(
            "submit_block_candidates_below_difficulty", ts.boolean, True
        ),
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
        t.note(ts.bad(t.key("backoff_max"), policy.backoff_max, "is below backoff_initial",
                      f"a number >= {policy.backoff_initial:g}"))  # fmt: skip
    return policy


def _device(t: Table, index: int) -> DeviceConfig:
    if "board" in t.data:  # the board implies driver, port and chips
        board = parse_board(t)
        chain = board.chain
        return _chain(t, index, (chain.driver, chain.port, chain.chips), board)
    driver = t.require("driver", _DRIVER_NAME, "a driver name such as bm1366")
    port = t.require("port", ts.text, "a device path such as /dev/ttyACM0 or a pyserial URL")
    chips = t.require("chips", ts.integer(1, 256), "the number of chips on the chain")
    return _chain(t, index, (driver, port, chips), None)


def _chain(
    t: Table, index: int, where: tuple[str, str, int], board: ParsedBoard | None
) -> DeviceConfig:
    driver, port, chips = where
    return DeviceConfig(
        name=t.get("name", _DEVICE_NAME, f"{driver}-{index}"),
        driver=driver,
        port=port,
        chips=chips,
        frequency_mhz=board.chain.frequency_mhz
        if board
        else t.optional("frequency_mhz", ts.number(1, 2000)),
        ticket_difficulty=t.get("ticket_difficulty", ts.number(1), 256.0),
        difficulty_scale=t.get("difficulty_scale", ts.number(0, 1, lo_open=True), 1.0),
        enabled=t.get("enabled", ts.boolean, True),
        options=t.get("options", ts.free_table, MappingProxyType({})),
        board=board.entry if board else None,
    )


def _api(t: Table) -> ApiConfig:
    api = ApiConfig(
        cgminer_enabled=t.get("cgminer_enabled", ts.boolean, False),
        cgminer_listen=t.get("cgminer_listen", cv.listen, _API_DEFAULTS.cgminer_listen),
        cgminer_allow=t.get("cgminer_allow", cv.networks, _API_DEFAULTS.cgminer_allow),
        rest_enabled=t.get("rest_enabled", ts.boolean, False),
        rest_listen=t.get("rest_listen", cv.listen, _API_DEFAULTS.rest_listen),
        rest_token=cv.secret(t, "rest_token"),
    )
    if api.rest_enabled and api.rest_token is None and not api.rest_listen.is_loopback:
        problem = f"is required when rest_listen ({api.rest_listen}) is reachable from the network"
        t.note(ConfigError(t.key("rest_token"), problem))
    return api


def _mqtt(t: Table) -> MqttConfig:
    tls = t.get("tls", ts.boolean, False)
    if "ca_file" in t.data and not tls:
        t.note(ConfigError(t.key("ca_file"), "only applies when tls = true"))
    mqtt = MqttConfig(
        enabled=t.get("enabled", ts.boolean, False),
        host=t.get("host", cv.host, "127.0.0.1"),
        port=t.get("port", ts.integer(1, 65535), 8883 if tls else 1883),
        tls=tls,
        ca_file=t.optional("ca_file", ts.file_in(t.ctx)),
        username=t.optional("username", ts.text),
        password=cv.secret(t, "password"),
        base_topic=t.get("base_topic", _TOPIC, f"stratum-client/{socket.gethostname()}"),
        discovery_prefix=t.get("discovery_prefix", _TOPIC, "homeassistant"),
        interval=t.get("interval", ts.number(0, lo_open=True), 10.0),
        client_id=t.optional("client_id", ts.text),
    )
    if mqtt.password is not None and mqtt.username is None:
        t.note(ConfigError(t.key("username"), "is missing; MQTT sends a password only with one"))
    return mqtt


_Read = tuple[int, Table, T]


def _sections(tables: list[Table], read: Callable[[Table, int], T]) -> list[_Read[T]]:
    """Each ``[[...]]`` table read on its own: one that fails is noted and left out."""
    found = []
    for index, table in enumerate(tables):
        item = table.ctx.problems.attempt(partial(read, table, index), None)
        if item is not None:
            found.append((index, table, item))
    return found


def _unique(items: Sequence[_Read[object]], attr: str) -> None:
    seen: dict[object, int] = {}
    for index, table, item in items:
        value = getattr(item, attr)
        if value in seen:
            table.note(ts.bad(table.key(attr), value, f"is already used by [{seen[value]}]",
                              "unique values"))  # fmt: skip
        else:
            seen[value] = index


def _array(top: Table, name: str, known: tuple[str, ...]) -> list[Table]:
    tables = top.ctx.problems.attempt(lambda: top.array(name, known), None)
    if tables == []:
        what = f"[[{name}]]"
        top.note(ConfigError(name, f"is missing; expected at least one {what} table"))
    return tables or []


def _telemetry(top: Table) -> TelemetryConfig:
    telemetry = top.table("telemetry", ("mqtt",))
    return TelemetryConfig(mqtt=_mqtt(telemetry.table("mqtt", _MQTT_KEYS)))


def _build(data: Mapping[str, object], source: str, ctx: TableContext) -> Config:
    attempt, top = ctx.problems.attempt, Table(data, "", _TOP_KEYS, ctx)
    pool_tables = _array(top, "pools", _POOL_KEYS)
    device_tables = _array(top, "devices", _DEVICE_KEYS)
    pools = _sections(pool_tables, lambda t, _: _pool(t))
    devices = _sections(device_tables, _device)
    _unique(pools, "name")
    _unique(devices, "name")
    _unique(devices, "port")
    names: Collection[str] | None = [d.name for _, _, d in devices]
    if len(devices) < len(device_tables) or not device_tables:
        names = None  # a device that failed to read may be the one [energy] names
    config = Config(
        pools=tuple(p for _, _, p in pools),
        devices=tuple(d for _, _, d in devices),
        daemon=attempt(lambda: _daemon(top.table("daemon", _DAEMON_KEYS)), _DAEMON_DEFAULTS),
        pool_policy=attempt(
            lambda: _pool_policy(top.table("pool_policy", _POLICY_KEYS)), PoolPolicy()
        ),
        api=attempt(lambda: _api(top.table("api", _API_KEYS)), _API_DEFAULTS),
        telemetry=attempt(lambda: _telemetry(top), TelemetryConfig()),
        energy=parse_energy(
            top.get("energy", ts.free_table, MappingProxyType({})),
            device_names=names,
            problems=ctx.problems,
        ),
        alerts=parse_alerts(top.get("alerts", ts.free_table, MappingProxyType({})), ctx.problems),
        source=source,
    )
    ctx.problems.check()
    return config


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
        error = _with_lines(exc, text_or_dict) if isinstance(text_or_dict, str) else exc
        error.add_note(f"in {source}")
        raise error from None


def _with_lines(exc: ConfigError, text: str) -> ConfigError:
    """``exc`` with each problem's line filled in, listed top to bottom as in the file."""
    lines = key_lines(text)
    for error in exc.errors:
        error.line = locate(error.field, lines)
    ordered = sorted(exc.errors, key=lambda e: e.line or len(text))
    return exc if ordered == list(exc.errors) else ConfigError.of(ordered)


def parse_pool(table: Mapping[str, object], *, env: Mapping[str, str] | None = None) -> PoolConfig:
    """Validate one ``[[pools]]`` table on its own (a pool added while running)."""
    ctx = TableContext(Path.cwd(), os.environ if env is None else env)
    pool = ctx.problems.attempt(partial(_pool, Table(table, "pools[0]", _POOL_KEYS, ctx)), None)
    ctx.problems.check()
    assert pool is not None, "a pool that failed to read left a problem"
    return pool


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
