"""``[alerts]``: defaults, every key read, and clear errors naming the key."""

from __future__ import annotations

import pytest

from stratum_client.alerts.config import ALERT_KINDS, AlertsConfig, parse_alerts
from stratum_client.config import parse_config
from stratum_client.errors import ConfigError

BASE = """
[[pools]]
url = "stratum+tcp://pool.example.com:3333"
user = "u"
[[devices]]
name = "a"
driver = "bm1366"
port = "/dev/ttyUSB0"
chips = 1
"""


def test_no_table_means_off() -> None:
    assert parse_config(BASE).alerts == AlertsConfig()
    assert parse_alerts({}).enabled is False


def test_a_full_table_is_read() -> None:
    config = parse_config(
        BASE
        + """
[alerts]
pool_down_after = 90
chain_dead_after = 300
rejected_percent = 2.5
rejected_window = 900
rejected_min_shares = 50
rate_per_minute = 2
burst = 1
retries = 3
retry_initial = 1
retry_max = 30
queue_size = 8
[[alerts.webhooks]]
name = "phone"
url = "https://ntfy.sh/my-rig-topic"
format = "ntfy"
kinds = ["block_found", "safe_state"]
[[alerts.webhooks]]
url = "http://127.0.0.1:8123/api/webhook/miner"
timeout = 3
"""
    ).alerts
    assert config.enabled
    assert (config.pool_down_after, config.chain_dead_after) == (90.0, 300.0)
    assert (config.rejected_percent, config.rejected_window, config.rejected_min_shares) == (
        2.5,
        900.0,
        50,
    )
    assert (config.rate_per_minute, config.burst, config.retries) == (2.0, 1, 3)
    assert (config.retry_initial, config.retry_max, config.queue_size) == (1.0, 30.0, 8)
    phone, generic = config.webhooks
    assert (phone.name, phone.format, phone.kinds) == (
        "phone",
        "ntfy",
        frozenset({"block_found", "safe_state"}),
    )
    assert (generic.name, generic.format, generic.timeout) == ("webhook1", "json", 3.0)
    assert generic.kinds == frozenset(ALERT_KINDS)


H = "http://h/"


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"webhooks": [{"url": "ftp://x.example/a"}]}, "alerts.webhooks[0].url", "value hidden"),
        ({"webhooks": [{"url": "https://"}]}, "alerts.webhooks[0].url", "http"),
        ({"webhooks": [{}]}, "alerts.webhooks[0].url", "is missing"),
        ({"webhooks": [{"url": H, "format": "slack"}]}, "alerts.webhooks[0].format", "ntfy"),
        ({"webhooks": [{"url": H, "kinds": ["fire"]}]}, "alerts.webhooks[0].kinds[0]", "chain"),
        ({"webhooks": [{"url": H, "kinds": []}]}, "alerts.webhooks[0].kinds", "non-empty"),
        ({"webhooks": [{"url": H, "name": "x"}, {"url": H, "name": "x"}]},
         "alerts.webhooks[1].name", "already used"),
        ({"pool_down_afer": 5}, "alerts.pool_down_afer", "did you mean 'pool_down_after'"),
        ({"rejected_percent": 120}, "alerts.rejected_percent", "out of range"),
        ({"enabled": True}, "alerts.webhooks", "need a [[alerts.webhooks]]"),
        ({"retry_initial": 10, "retry_max": 5, "webhooks": [{"url": H}]},
         "alerts.retry_max", "retry_initial"),
    ],
)  # fmt: skip
def test_mistakes_are_named(table: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_alerts(table)
    assert caught.value.field == key
    assert words in str(caught.value)


def test_a_webhook_url_is_never_echoed_in_an_error() -> None:
    secret = "ftp://discord.example/api/webhooks/123/s3cr3t-t0ken"
    with pytest.raises(ConfigError) as caught:
        parse_alerts({"webhooks": [{"url": secret}]})
    assert "s3cr3t" not in str(caught.value)


def test_alerts_problems_are_reported_with_the_rest_of_the_files() -> None:
    text = BASE.replace('user = "u"', "user = 5") + (
        '[alerts]\nburst = 0\n[[alerts.webhooks]]\nurl = "gopher://x"\nformat = "slack"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert [error.field for error in caught.value.errors] == [
        "pools[0].user",
        "alerts.burst",
        "alerts.webhooks[0].url",
        "alerts.webhooks[0].format",
    ]
