"""MQTT topics and state payloads, without I/O (commands: :mod:`.commands`).

Layout under the configured base topic (see docs/telemetry.md for samples)::

    <base>/availability            online | offline      retained (birth / last will)
    <base>/state                   miner JSON            retained
    <base>/config                  static-ish JSON       retained
    <base>/device/<slug>/state     one chain's JSON      retained
    <base>/event                   event JSON            not retained
    <base>/cmd/<command>           command JSON          written by clients
    <base>/cmd/result              result JSON           not retained

Hashrates in payloads are GH/s (what dashboards display), everything else in the units
of :mod:`stratum_client.api.model`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from stratum_client.api.board_fields import mqtt_board_fields
from stratum_client.api.model import DeviceState, MinerState, PoolStatus
from stratum_client.units import GIGA, in_unit

__all__ = [
    "OFFLINE",
    "ONLINE",
    "EnergyMeter",
    "Message",
    "Topics",
    "config_message",
    "event_messages",
    "slug",
    "state_messages",
    "to_json",
]

ONLINE = b"online"
OFFLINE = b"offline"

_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def slug(text: str) -> str:
    """A topic level and HA object id: lower-case ``[a-z0-9_-]``, never empty."""
    return _UNSAFE.sub("_", text.lower()).strip("_")[:64] or "unnamed"


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the daemon publishes or listens to, from the base topic."""

    base: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def config(self) -> str:
        return f"{self.base}/config"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def commands(self) -> str:
        """The subscription filter; it also matches :attr:`result`, which is skipped."""
        return f"{self.base}/cmd/#"

    @property
    def result(self) -> str:
        return f"{self.base}/cmd/result"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def device(self, name: str) -> str:
        return f"{self.base}/device/{slug(name)}/state"


def to_json(payload: object) -> bytes:
    """Compact JSON; NaN and infinities are refused (payloads round them to null)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def _num(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _ghs(hps: float) -> float | None:
    return in_unit(hps, GIGA, 3) if math.isfinite(hps) else None


# --------------------------------------------------------------------------- state


class EnergyMeter:
    """kWh from the power estimate, integrated between publishes (resets on restart).

    Home Assistant's energy dashboard wants a ``total_increasing`` energy sensor; a gap
    longer than ``max_gap`` (daemon stalled, clock jump) adds nothing rather than a
    guessed amount.
    """

    def __init__(self, max_gap: float = 300.0) -> None:
        self.kwh = 0.0
        self.max_gap = max_gap
        self._last: tuple[float, float] | None = None

    def update(self, power_w: float | None, now: float) -> float:
        if self._last is not None:
            previous_w, at = self._last
            gap = now - at
            if 0 < gap <= self.max_gap:
                self.kwh += previous_w * gap / 3_600_000.0
        self._last = None if power_w is None or not math.isfinite(power_w) else (power_w, now)
        return self.kwh


def _pool_brief(pool: PoolStatus) -> dict[str, object]:
    return {
        "index": pool.index,
        "name": pool.name,
        "url": pool.url,
        "state": pool.state,
        "accepted": pool.accepted,
        "rejected": pool.rejected,
        "stale": pool.stale,
    }


def state_payload(state: MinerState, *, energy_kwh: float | None = None) -> dict[str, object]:
    """``<base>/state``: the whole miner in one retained JSON document."""
    pool = state.active_pool
    return {
        "mining": str(state.mining),
        "pause_reason": state.pause_reason,
        "hashrate_1m": _ghs(state.hashrate.m1),
        "hashrate_5m": _ghs(state.hashrate.m5),
        "hashrate_15m": _ghs(state.hashrate.m15),
        "hashrate_avg": _ghs(state.hashrate.average),
        "accepted": state.accepted,
        "rejected": state.rejected,
        "stale": state.stale,
        "hw_errors": state.hw_errors,
        "best_share": _num(state.best_share),
        "found_blocks": state.found_blocks,
        "power_w": _num(state.power_w, 1),
        "energy_kwh": _num(energy_kwh, 4),
        "uptime_s": int(max(state.elapsed, 0.0)),
        "chips": sum(device.chips for device in state.devices),
        "chips_alive": sum(device.chips_alive for device in state.devices),
        "pool": pool.name if pool else None,
        "pool_url": pool.url if pool else None,
        "pool_state": pool.state if pool else "none",
        "pool_difficulty": _num(pool.difficulty) if pool else None,
        "pools": [_pool_brief(p) for p in state.pools],
        "timestamp": int(state.when),
    }


def device_payload(device: DeviceState) -> dict[str, object]:
    """``<base>/device/<slug>/state``: one chain, with per-chip health."""
    return {
        "name": device.name,
        "model": device.model,
        "status": str(device.status),
        "enabled": device.enabled,
        "chips": device.chips,
        "chips_alive": device.chips_alive,
        "frequency_mhz": _num(device.frequency_mhz, 2),
        "temperature_c": _num(device.temperature_c, 1),
        "voltage_v": _num(device.voltage_v, 3),
        "power_w": _num(device.power_w, 1),
        "hashrate_1m": _ghs(device.hashrate.m1),
        "hashrate_5m": _ghs(device.hashrate.m5),
        "hashrate_15m": _ghs(device.hashrate.m15),
        "accepted": device.accepted,
        "rejected": device.rejected,
        "hw_errors": device.hw_errors,
        **mqtt_board_fields(device),
        "chip_health": [
            {
                "chip": chip.index,
                "alive": chip.alive,
                "nonces": chip.nonces,
                "hw_errors": chip.hw_errors,
                "duplicates": chip.duplicates,
                "last_nonce_age_s": _num(chip.last_nonce_age, 1),
            }
            for chip in device.chip_counters
        ],
    }


def config_payload(state: MinerState) -> dict[str, object]:
    """``<base>/config``: what the miner is, not how it is doing (no secrets)."""
    return {
        "version": state.version,
        "hostname": state.hostname,
        "devices": [
            {"name": d.name, "model": d.model, "chips": d.chips, "enabled": d.enabled}
            for d in state.devices
        ],
        "pools": [
            {"index": p.index, "name": p.name, "url": p.url, "user": p.user} for p in state.pools
        ],
    }


def state_messages(
    topics: Topics, state: MinerState, *, energy_kwh: float | None = None
) -> list[Message]:
    """The retained state documents for one publish round."""
    messages = [Message(topics.state, to_json(state_payload(state, energy_kwh=energy_kwh)), True)]
    messages += [
        Message(topics.device(device.name), to_json(device_payload(device)), True)
        for device in state.devices
    ]
    return messages


def config_message(topics: Topics, state: MinerState) -> Message:
    return Message(topics.config, to_json(config_payload(state)), retain=True, qos=1)


# --------------------------------------------------------------------------- events


def _events(previous: MinerState, current: MinerState) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if previous.mining != current.mining and current.mining == "paused":
        found.append({"event": "mining_paused", "reason": current.pause_reason})
    elif previous.mining != current.mining:
        found.append({"event": "mining_resumed"})
    old_pool, new_pool = previous.active_pool, current.active_pool
    if (old_pool and old_pool.index) != (new_pool and new_pool.index):
        found.append(
            {
                "event": "pool_changed",
                "from": old_pool.name if old_pool else None,
                "to": new_pool.name if new_pool else None,
            }
        )
    if current.found_blocks > previous.found_blocks:
        found.append({"event": "block_found", "count": current.found_blocks})
    old_status = {device.name: device.status for device in previous.devices}
    for device in current.devices:
        if device.name in old_status and old_status[device.name] != device.status:
            event = {"event": "device_status", "device": device.name}
            found.append({**event, "from": str(old_status[device.name]), "to": str(device.status)})
    return found


def event_messages(
    topics: Topics, previous: MinerState | None, current: MinerState
) -> list[Message]:
    """Non-retained events for what changed between two snapshots."""
    if previous is None:
        return []
    return [
        Message(topics.event, to_json({**event, "timestamp": int(current.when)}))
        for event in _events(previous, current)
    ]
