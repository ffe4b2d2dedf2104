"""Webhook bodies for each format, checked against the receivers' documented layouts."""

from __future__ import annotations

import json

from stratum_client.alerts.bodies import render
from stratum_client.alerts.policy import Alert

ALERT = Alert(
    "pool_down",
    "pool main down",
    "pool main has been down for 61 s",
    (("pool", "main"), ("down for", "61 s")),
)
AT = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def test_generic_json_carries_every_field() -> None:
    request = render(ALERT, "json", host="rig-1", at=AT)
    assert dict(request.headers) == {"Content-Type": "application/json"}
    assert json.loads(request.body) == {
        "kind": "pool_down",
        "title": "pool main down",
        "message": "pool main has been down for 61 s",
        "host": "rig-1",
        "at": "2025-11-24T16:00:00+00:00",
        "details": {"pool": "main", "down for": "61 s"},
        "source": "stratum-client",
    }


def test_ntfy_puts_the_message_in_the_body_and_the_rest_in_headers() -> None:
    request = render(ALERT, "ntfy", host="rig-1", at=AT)
    headers = dict(request.headers)
    assert headers["Title"] == "rig-1: pool main down"
    assert headers["Priority"] == "default"
    assert headers["Tags"] == "warning,pool_down"
    assert request.body.decode().splitlines() == [
        "pool main has been down for 61 s",
        "pool: main",
        "down for: 61 s",
    ]
    safe = render(Alert("safe_state", "board ü hot", "95 °C"), "ntfy", host="rig", at=AT)
    assert dict(safe.headers)["Priority"] == "urgent"
    assert dict(safe.headers)["Title"] == "rig: board ? hot"  # headers are Latin-1 text
    assert safe.body.decode() == "95 °C"


def test_discord_sends_one_embed_within_discords_limits() -> None:
    request = render(ALERT, "discord", host="rig-1", at=AT)
    document = json.loads(request.body)
    assert document["username"] == "stratum-client"
    [embed] = document["embeds"]
    assert embed["title"] == "pool main down"
    assert embed["description"] == "pool main has been down for 61 s"
    assert embed["timestamp"] == "2025-11-24T16:00:00+00:00"
    assert isinstance(embed["color"], int)
    assert embed["fields"][-1] == {"name": "host", "value": "rig-1", "inline": True}
    huge = Alert(
        "safe_state",
        "t" * 300,
        "m" * 5000,
        tuple((f"k{i}", "v" * 2000) for i in range(40)),
    )
    [embed] = json.loads(render(huge, "discord", host="h", at=AT).body)["embeds"]
    assert len(embed["title"]) == 256
    assert len(embed["description"]) == 4096
    assert len(embed["fields"]) == 25
    assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
