"""The ``[alerts]`` table: thresholds, delivery limits and the webhooks to post to.

Validated like the rest of the config (unknown keys are errors naming the dotted key,
with a suggestion). Absent or without webhooks means off. A webhook URL often carries
its token (Discord's do, ntfy topics are guessable names), so logs name a webhook by
its ``name`` only and the service registers every URL as a secret to be masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast
from urllib.parse import urlsplit

from stratum_client import tomlschema as ts
from stratum_client.errors import ConfigError
from stratum_client.tomlschema import Table, TableContext

__all__ = ["ALERT_KINDS", "FORMATS", "AlertsConfig", "Format", "WebhookConfig", "parse_alerts"]

ALERT_KINDS: Final = ("block_found", "pool_down", "chain_dead", "rejected_rate", "safe_state")
"""Every alert kind, in the order the docs list them."""
Format = Literal["json", "ntfy", "discord"]
FORMATS: Final = ("json", "ntfy", "discord")

_TOP_KEYS: Final = (
    "enabled",
    "interval",
    "pool_down_after",
    "chain_dead_after",
    "rejected_percent",
    "rejected_window",
    "rejected_min_shares",
    "rate_per_minute",
    "burst",
    "retries",
    "retry_initial",
    "retry_max",
    "queue_size",
    "webhooks",
)
_WEBHOOK_KEYS: Final = ("name", "url", "format", "kinds", "timeout")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One ``[[alerts.webhooks]]`` table."""

    name: str
    url: str
    format: Format = "json"
    kinds: frozenset[str] = frozenset(ALERT_KINDS)
    """The alert kinds this webhook gets (default: all)."""
    timeout: float = 10.0
    """Seconds for one POST, connecting included."""


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """``[alerts]``; the defaults are what an empty table means."""

    enabled: bool = False
    interval: float = 1.0
    """Seconds between looks at the daemon's stats."""
    pool_down_after: float = 60.0
    chain_dead_after: float = 120.0
    """A chain that is not paused and has sent no nonce for this long is dead."""
    rejected_percent: float = 5.0
    rejected_window: float = 600.0
    rejected_min_shares: int = 20
    """Fewer answered shares in the window and the rate is not judged (noise)."""
    rate_per_minute: float = 6.0
    burst: int = 3
    """Per webhook: at most ``burst`` posts at once, refilled at ``rate_per_minute``."""
    retries: int = 5
    """Further attempts after a failed POST, spaced by the shared backoff."""
    retry_initial: float = 2.0
    retry_max: float = 60.0
    queue_size: int = 32
    """Alerts waiting per webhook; when full the oldest is dropped (and counted)."""
    webhooks: tuple[WebhookConfig, ...] = ()


def parse_alerts(data: Mapping[str, object], problems: ts.Problems | None = None) -> AlertsConfig:
    """Validate the ``[alerts]`` table (an empty mapping gives the defaults: off).

    Problems go to ``problems`` when given (the caller raises them with the rest of the
    file's); otherwise every problem found is raised here as one :class:`ConfigError`.
    ``data`` may come frozen (tuples for arrays), as the config loader hands tables on.
    """
    hooks = data.get("webhooks")
    if isinstance(hooks, tuple):
        data = {**data, "webhooks": list(hooks)}
    ctx = TableContext(Path.cwd(), {}, problems or ts.Problems())
    top = Table(data, "alerts", _TOP_KEYS, ctx)
    none: list[Table] = []
    tables = ctx.problems.attempt(lambda: top.array("webhooks", _WEBHOOK_KEYS), none)
    read = [_webhook(table, i) for i, table in enumerate(tables)]
    webhooks = tuple(hook for hook in read if hook is not None)
    config = _thresholds(top, webhooks, bool(tables))
    for error in _cross_checks(config, len(tables)):
        ctx.problems.add(error)
    if problems is None:
        ctx.problems.check()
    return config


def _thresholds(top: Table, webhooks: tuple[WebhookConfig, ...], any_hooks: bool) -> AlertsConfig:
    seconds = ts.number(0.0, lo_open=True)
    return AlertsConfig(
        enabled=top.get("enabled", ts.boolean, any_hooks),
        interval=top.get("interval", ts.number(0.05, 3600.0), 1.0),
        pool_down_after=top.get("pool_down_after", seconds, 60.0),
        chain_dead_after=top.get("chain_dead_after", seconds, 120.0),
        rejected_percent=top.get("rejected_percent", ts.number(0.0, 100.0), 5.0),
        rejected_window=top.get("rejected_window", seconds, 600.0),
        rejected_min_shares=top.get("rejected_min_shares", ts.integer(1, 1_000_000), 20),
        rate_per_minute=top.get("rate_per_minute", ts.number(0.0, 600.0, lo_open=True), 6.0),
        burst=top.get("burst", ts.integer(1, 100), 3),
        retries=top.get("retries", ts.integer(0, 100), 5),
        retry_initial=top.get("retry_initial", seconds, 2.0),
        retry_max=top.get("retry_max", seconds, 60.0),
        queue_size=top.get("queue_size", ts.integer(1, 10_000), 32),
        webhooks=webhooks,
    )


def _cross_checks(config: AlertsConfig, tables: int) -> list[ConfigError]:
    errors = []
    names = [hook.name for hook in config.webhooks]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append(ConfigError(f"alerts.webhooks[{i}].name", f"{name!r} is already used"))
    if config.retry_max < config.retry_initial:
        errors.append(
            ConfigError(
                "alerts.retry_max", f"must be at least retry_initial ({config.retry_initial:g})"
            )
        )
    if config.enabled and not tables:
        errors.append(
            ConfigError(
                "alerts.webhooks", "is missing; enabled alerts need a [[alerts.webhooks]] table"
            )
        )
    return errors


def _webhook(table: Table, index: int) -> WebhookConfig | None:
    """One webhook, every key checked; None (its problems noted) if it has no usable URL."""
    if "url" not in table.data:
        table.note(ConfigError(table.key("url"), "is missing; expected an http:// or https:// URL"))
    hook = WebhookConfig(
        name=table.get("name", ts.text, f"webhook{index}"),
        url=table.get("url", _http_url, ""),
        format=cast("Format", table.get("format", ts.choice(*FORMATS), "json")),
        kinds=table.get("kinds", _kinds, frozenset(ALERT_KINDS)),
        timeout=table.get("timeout", ts.number(0.0, 300.0, lo_open=True), 10.0),
    )
    return hook if hook.url else None


def _http_url(key: str, value: object) -> str:
    url = ts.text(key, value)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port, parts = -1, urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == -1:
        # the value is not echoed: a webhook URL may hold its token
        raise ConfigError(key, "is not an http:// or https:// URL with a host (value hidden)")
    return url


def _kinds(key: str, value: object) -> frozenset[str]:
    if not isinstance(value, list | tuple) or not value:
        raise ts.bad(key, value, "is not a non-empty list", f"some of {', '.join(ALERT_KINDS)}")
    kinds = []
    for i, item in enumerate(value):
        kind = ts.string(f"{key}[{i}]", item)
        if kind not in ALERT_KINDS:
            raise ts.bad(
                f"{key}[{i}]", item, "is not an alert kind", f"one of {', '.join(ALERT_KINDS)}"
            )
        kinds.append(kind)
    return frozenset(kinds)
