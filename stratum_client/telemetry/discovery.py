"""Home Assistant MQTT discovery configs, without I/O.

Each entity gets a retained JSON config at
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` that points at our state
documents through a ``value_template``, names its unit, ``device_class`` and
``state_class`` (so HA graphs it, keeps long-term statistics and offers energy sensors
to the energy dashboard), and shares one ``device`` block so everything groups under a
single device. Every entity is tied to ``<base>/availability``, so a dead daemon (last
will) greys them all out.

Beyond sensors: a ``switch`` for mining on/off, a ``number`` per chain for its
frequency and a ``select`` for the active pool, all wired to ``<base>/cmd/*``.

Configs are derived from the current state, so a new chain or a sensor that starts
reporting temperature appears by itself; :func:`discovery_updates` publishes only what
changed and an empty retained payload (HA's "delete") for entities that went away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratum_client.api.model import DeviceState, DeviceStatus, MinerState, MiningState
from stratum_client.telemetry.topics import OFFLINE, ONLINE, Message, Topics, slug

__all__ = [
    "MANUFACTURER",
    "Sensor",
    "discovery_configs",
    "discovery_updates",
    "node_id",
]

MANUFACTURER = "stratum-client"
POOL_STATES = ("active", "connecting", "standby", "failed", "disabled", "none")
FREQUENCY_LIMITS = (50.0, 1200.0)
"""The HA slider's range; the daemon enforces each chip's real limits."""


@dataclass(frozen=True, slots=True)
class Sensor:
    """One HA sensor reading ``field`` of a state document."""

    key: str
    name: str
    field: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    diagnostic: bool = False
    options: tuple[str, ...] = ()
    precision: int | None = None


MEASUREMENT, TOTAL = "measurement", "total_increasing"

MINER_SENSORS = (
    Sensor(
        "hashrate_1m",
        "Hashrate 1m",
        "hashrate_1m",
        "GH/s",
        None,
        MEASUREMENT,
        "mdi:pickaxe",
        precision=2,
    ),
    Sensor(
        "hashrate_5m",
        "Hashrate 5m",
        "hashrate_5m",
        "GH/s",
        None,
        MEASUREMENT,
        "mdi:pickaxe",
        precision=2,
    ),
    Sensor(
        "hashrate_15m",
        "Hashrate 15m",
        "hashrate_15m",
        "GH/s",
        None,
        MEASUREMENT,
        "mdi:pickaxe",
        precision=2,
    ),
    Sensor("accepted", "Accepted shares", "accepted", None, None, TOTAL, "mdi:check-circle"),
    Sensor("rejected", "Rejected shares", "rejected", None, None, TOTAL, "mdi:close-circle"),
    Sensor("stale", "Stale shares", "stale", None, None, TOTAL, "mdi:clock-alert"),
    Sensor(
        "hw_errors", "Hardware errors", "hw_errors", None, None, TOTAL, "mdi:alert", diagnostic=True
    ),
    Sensor(
        "best_share", "Best share", "best_share", None, None, MEASUREMENT, "mdi:trophy", precision=0
    ),
    Sensor("found_blocks", "Blocks found", "found_blocks", None, None, TOTAL, "mdi:cube"),
    Sensor("power", "Power", "power_w", "W", "power", MEASUREMENT, precision=1),
    Sensor("energy", "Energy", "energy_kwh", "kWh", "energy", TOTAL, precision=3),
    Sensor("uptime", "Uptime", "uptime_s", "s", "duration", TOTAL, diagnostic=True),
    Sensor(
        "mining_state", "Mining state", "mining", device_class="enum", options=tuple(MiningState)
    ),
    Sensor(
        "pause_reason", "Pause reason", "pause_reason", icon="mdi:pause-circle", diagnostic=True
    ),
    Sensor("pool", "Active pool", "pool", icon="mdi:server-network"),
    Sensor("pool_state", "Pool status", "pool_state", device_class="enum", options=POOL_STATES),
    Sensor(
        "pool_difficulty",
        "Pool difficulty",
        "pool_difficulty",
        None,
        None,
        MEASUREMENT,
        "mdi:target",
    ),
    Sensor("chips_alive", "Chips alive", "chips_alive", None, None, MEASUREMENT, "mdi:chip"),
)

DEVICE_SENSORS = (
    Sensor(
        "hashrate_1m",
        "Hashrate 1m",
        "hashrate_1m",
        "GH/s",
        None,
        MEASUREMENT,
        "mdi:pickaxe",
        precision=2,
    ),
    Sensor("frequency", "Frequency", "frequency_mhz", "MHz", "frequency", MEASUREMENT, precision=1),
    Sensor(
        "temperature", "Temperature", "temperature_c", "°C", "temperature", MEASUREMENT, precision=1
    ),
    Sensor("voltage", "Core voltage", "voltage_v", "V", "voltage", MEASUREMENT, precision=3),
    Sensor("power", "Power", "power_w", "W", "power", MEASUREMENT, precision=1),
    Sensor("chips_alive", "Chips alive", "chips_alive", None, None, MEASUREMENT, "mdi:chip"),
    Sensor("status", "Status", "status", device_class="enum", options=tuple(DeviceStatus)),
    Sensor("accepted", "Accepted shares", "accepted", None, None, TOTAL, "mdi:check-circle"),
    Sensor(
        "hw_errors", "Hardware errors", "hw_errors", None, None, TOTAL, "mdi:alert", diagnostic=True
    ),
)

_OPTIONAL: Mapping[str, Callable[[DeviceState], object]] = {
    "temperature": lambda device: device.temperature_c,
    "voltage": lambda device: device.voltage_v,
    "power": lambda device: device.power_w,
}
"""Device sensors offered only once the driver reports them."""


def node_id(topics: Topics) -> str:
    """HA's node id for this daemon: the base topic, made safe."""
    return slug(topics.base)


def _device_block(state: MinerState, node: str) -> dict[str, object]:
    models = sorted({device.model for device in state.devices})
    chips = sum(device.chips for device in state.devices)
    model = f"{'/'.join(models) or 'BM13xx'} × {chips}" if chips else "BM13xx miner"
    return {
        "identifiers": [node],
        "name": state.hostname,
        "manufacturer": MANUFACTURER,
        "model": model,
        "sw_version": state.version,
    }


@dataclass(frozen=True, slots=True)
class _Common:
    """What every config of one daemon shares."""

    topics: Topics
    node: str
    device: dict[str, object]
    origin: dict[str, object]

    def base(self, object_id: str, name: str) -> dict[str, object]:
        return {
            "name": name,
            "unique_id": f"{self.node}_{object_id}",
            "availability_topic": self.topics.availability,
            "payload_available": ONLINE.decode(),
            "payload_not_available": OFFLINE.decode(),
            "device": self.device,
            "origin": self.origin,
        }


def _sensor_config(
    common: _Common, sensor: Sensor, object_id: str, state_topic: str, prefix: str = ""
) -> dict[str, object]:
    config = common.base(object_id, f"{prefix}{sensor.name}")
    config["state_topic"] = state_topic
    config["value_template"] = f"{{{{ value_json.{sensor.field} }}}}"
    extras = {
        "unit_of_measurement": sensor.unit,
        "device_class": sensor.device_class,
        "state_class": sensor.state_class,
        "icon": sensor.icon,
        "entity_category": "diagnostic" if sensor.diagnostic else None,
        "options": list(sensor.options) or None,
        "suggested_display_precision": sensor.precision,
    }
    config.update({key: value for key, value in extras.items() if value is not None})
    return config


def _topic(prefix: str, component: str, node: str, object_id: str) -> str:
    return f"{prefix}/{component}/{node}/{object_id}/config"


def _miner_entities(
    common: _Common, state: MinerState, prefix: str
) -> dict[str, dict[str, object]]:
    topics, node = common.topics, common.node
    configs = {
        _topic(prefix, "sensor", node, s.key): _sensor_config(common, s, s.key, topics.state)
        for s in MINER_SENSORS
    }
    switch = common.base("mining", "Mining")
    switch.update(
        command_topic=topics.command("mining"),
        payload_on=json.dumps({"running": True}),
        payload_off=json.dumps({"running": False}),
        state_topic=topics.state,
        value_template="{{ value_json.mining }}",
        state_on=MiningState.RUNNING.value,
        state_off=MiningState.PAUSED.value,
        icon="mdi:pickaxe",
    )
    configs[_topic(prefix, "switch", node, "mining")] = switch
    if state.pools:
        select = common.base("pool_select", "Pool")
        select.update(
            command_topic=topics.command("switch_pool"),
            command_template='{"pool": {{ value | tojson }}}',
            state_topic=topics.state,
            value_template="{{ value_json.pool }}",
            options=[pool.name for pool in state.pools],
            icon="mdi:server-network",
        )
        configs[_topic(prefix, "select", node, "pool_select")] = select
    return configs


def _device_entities(
    common: _Common, device: DeviceState, prefix: str
) -> dict[str, dict[str, object]]:
    dev = slug(device.name)
    state_topic = common.topics.device(device.name)
    configs: dict[str, dict[str, object]] = {}
    for sensor in DEVICE_SENSORS:
        reported = _OPTIONAL.get(sensor.key)
        if reported is not None and reported(device) is None:
            continue
        object_id = f"{dev}_{sensor.key}"
        config = _sensor_config(common, sensor, object_id, state_topic, f"{device.name} ")
        configs[_topic(prefix, "sensor", common.node, object_id)] = config
    number = common.base(f"{dev}_frequency_set", f"{device.name} frequency target")
    low, high = FREQUENCY_LIMITS
    number.update(
        command_topic=common.topics.command("set_frequency"),
        command_template=f'{{"device": {json.dumps(device.name)}, "mhz": {{{{ value }}}}}}',
        state_topic=state_topic,
        value_template="{{ value_json.frequency_mhz }}",
        min=low,
        max=high,
        step=1,
        mode="box",
        unit_of_measurement="MHz",
        device_class="frequency",
        entity_category="config",
    )
    configs[_topic(prefix, "number", common.node, f"{dev}_frequency_set")] = number
    return configs


def discovery_configs(
    state: MinerState, topics: Topics, discovery_prefix: str
) -> dict[str, dict[str, object]]:
    """Config topic → config document, for every entity this state warrants."""
    node = node_id(topics)
    origin: dict[str, object] = {"name": MANUFACTURER, "sw_version": state.version}
    common = _Common(topics, node, _device_block(state, node), origin)
    configs = _miner_entities(common, state, discovery_prefix)
    for device in state.devices:
        configs.update(_device_entities(common, device, discovery_prefix))
    return configs


def discovery_updates(
    configs: Mapping[str, Mapping[str, object]], published: Mapping[str, bytes]
) -> tuple[list[Message], dict[str, bytes]]:
    """Messages that bring the broker from ``published`` to ``configs``, and the new set.

    Unchanged configs are not resent; entities no longer warranted get an empty
    retained payload, which makes Home Assistant remove them.
    """
    current = {
        topic: json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
        for topic, config in configs.items()
    }
    messages = [
        Message(topic, payload, retain=True, qos=1)
        for topic, payload in current.items()
        if published.get(topic) != payload
    ]
    messages += [
        Message(topic, b"", retain=True, qos=1) for topic in published if topic not in current
    ]
    return messages, current
