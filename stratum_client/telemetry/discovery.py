"""Home Assistant MQTT discovery configs, without I/O.

Each entity gets a retained JSON config at
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` that points at our state
documents through a ``value_template``, names its unit, ``device_class`` and
``state_class`` (so HA graphs it, keeps long-term statistics and offers energy sensors
to the energy dashboard), and shares one ``device`` block so everything groups under a
single device. Every entity is tied to ``<base>/availability``, so a dead daemon (last
will) greys them all out.

Beyond sensors: a ``switch`` for mining on/off, a ``number`` per chain for its
frequency and a ``select`` for the active pool, all wired to ``<base>/cmd/*``. A chain on
a board gets a ``number`` for its fan duty and one for its core voltage, each spanning
what that board allows (none for a setting the board cannot change, e.g. a PiAxe's fan),
and a ``button`` that gives the fan back to the board's PID (``set_fan`` with
``auto: true``); a fixed duty set on the number switches the PID off.

Configs are derived from the current state, so a new chain or a sensor that starts
reporting temperature appears by itself; :func:`discovery_updates` publishes only what
changed and an empty retained payload (HA's "delete") for entities that went away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stratum_client.api.board_fields import BOARD_STATES
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


def _hashrate(window: str) -> Sensor:
    key = f"hashrate_{window}"
    name = f"Hashrate {window}"
    return Sensor(key, name, key, "GH/s", None, MEASUREMENT, "mdi:pickaxe", precision=2)


def _counter(key: str, name: str, icon: str, diagnostic: bool = False) -> Sensor:
    """A count that only grows (shares, errors, blocks)."""
    return Sensor(key, name, key, state_class=TOTAL, icon=icon, diagnostic=diagnostic)


def _gauge(key: str, name: str, icon: str, precision: int | None = None) -> Sensor:
    """A unitless measurement (a difficulty, a chip count)."""
    return Sensor(key, name, key, state_class=MEASUREMENT, icon=icon, precision=precision)


def _reading(key: str, name: str, field: str, unit: str, precision: int) -> Sensor:
    """A measurement whose HA device class is its key (power, frequency, ...)."""
    return Sensor(key, name, field, unit, key, MEASUREMENT, precision=precision)


def _enum(key: str, name: str, field: str, options: tuple[str, ...]) -> Sensor:
    return Sensor(key, name, field, device_class="enum", options=options)


_CHIPS_ALIVE = _gauge("chips_alive", "Chips alive", "mdi:chip")
_HW_ERRORS = _counter("hw_errors", "Hardware errors", "mdi:alert", diagnostic=True)

MINER_SENSORS = (
    *(_hashrate(window) for window in ("1m", "5m", "15m")),
    _counter("accepted", "Accepted shares", "mdi:check-circle"),
    _counter("rejected", "Rejected shares", "mdi:close-circle"),
    _counter("stale", "Stale shares", "mdi:clock-alert"),
    _HW_ERRORS,
    _gauge("best_share", "Best share", "mdi:trophy", precision=0),
    _counter("found_blocks", "Blocks found", "mdi:cube"),
    _reading("power", "Power", "power_w", "W", 1),
    Sensor("energy", "Energy", "energy_kwh", "kWh", "energy", TOTAL, precision=3),
    Sensor("uptime", "Uptime", "uptime_s", "s", "duration", TOTAL, diagnostic=True),
    _enum("mining_state", "Mining state", "mining", tuple(MiningState)),
    Sensor(
        "pause_reason", "Pause reason", "pause_reason", icon="mdi:pause-circle", diagnostic=True
    ),
    Sensor("pool", "Active pool", "pool", icon="mdi:server-network"),
    _enum("pool_state", "Pool status", "pool_state", POOL_STATES),
    _gauge("pool_difficulty", "Pool difficulty", "mdi:target"),
    _CHIPS_ALIVE,
)

BOARD_SENSORS = (
    _enum("board_state", "Board state", "board_state", BOARD_STATES),
    Sensor(
        "vr_temperature",
        "Regulator temperature",
        "vr_temperature_c",
        "°C",
        "temperature",
        MEASUREMENT,
        precision=1,
    ),
    Sensor("fan_rpm", "Fan speed", "fan_rpm", "RPM", None, MEASUREMENT, "mdi:fan", precision=0),
    Sensor("fan_percent", "Fan duty", "fan_percent", "%", None, MEASUREMENT, "mdi:fan"),
    Sensor("input_voltage", "Input voltage", "input_voltage_v", "V", "voltage", MEASUREMENT),
    Sensor("input_current", "Input current", "input_current_a", "A", "current", MEASUREMENT),
)
"""Offered for a chain that runs on a board (its ``[[devices]]`` table names one)."""

DEVICE_SENSORS = (
    _hashrate("1m"),
    _reading("frequency", "Frequency", "frequency_mhz", "MHz", 1),
    _reading("temperature", "Temperature", "temperature_c", "°C", 1),
    Sensor("voltage", "Core voltage", "voltage_v", "V", "voltage", MEASUREMENT, precision=3),
    _reading("power", "Power", "power_w", "W", 1),
    _CHIPS_ALIVE,
    _enum("status", "Status", "status", tuple(DeviceStatus)),
    _counter("accepted", "Accepted shares", "mdi:check-circle"),
    _HW_ERRORS,
    *BOARD_SENSORS,
)

_OPTIONAL: Mapping[str, Callable[[DeviceState], object]] = {
    "temperature": lambda device: device.temperature_c,
    "voltage": lambda device: device.voltage_v,
    "power": lambda device: device.power_w,
    **{sensor.key: lambda device: device.board for sensor in BOARD_SENSORS},
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


@dataclass(frozen=True, slots=True)
class Control:
    """One HA ``number`` that writes a chain's setting through ``<base>/cmd/<command>``."""

    key: str
    name: str
    command: str
    argument: str
    """The command's field the value goes into."""
    field: str
    """The device state field shown as the number's value (what the chain reports)."""
    unit: str
    step: float
    device_class: str | None = None
    icon: str | None = None


FREQUENCY = Control("frequency_set", "frequency target", "set_frequency", "mhz",
                    "frequency_mhz", "MHz", 1, "frequency")  # fmt: skip
FAN = Control("fan_set", "fan duty target", "set_fan", "percent", "fan_percent", "%", 1,
              icon="mdi:fan")  # fmt: skip
CORE_VOLTAGE = Control("core_voltage_set", "core voltage target", "set_core_voltage", "volts",
                       "voltage_v", "V", 0.001, "voltage")  # fmt: skip
"""The measured core voltage (READ_VOUT) is the number's value; a null reading renders
``None``, HA's default ``payload_reset``, so the number shows unknown rather than an error."""


def _number_config(
    common: _Common,
    device: DeviceState,
    control: Control,
    limits: tuple[float, float],
    prefix: str,
) -> tuple[str, dict[str, object]]:
    object_id = f"{slug(device.name)}_{control.key}"
    number = common.base(object_id, f"{device.name} {control.name}")
    argument = json.dumps(control.argument)
    number.update(
        command_topic=common.topics.command(control.command),
        command_template=f'{{"device": {json.dumps(device.name)}, {argument}: {{{{ value }}}}}}',
        state_topic=common.topics.device(device.name),
        value_template=f"{{{{ value_json.{control.field} }}}}",
        min=limits[0],
        max=limits[1],
        step=control.step,
        mode="box",
        unit_of_measurement=control.unit,
        entity_category="config",
    )
    extras = {"device_class": control.device_class, "icon": control.icon}
    number.update({key: value for key, value in extras.items() if value is not None})
    return _topic(prefix, "number", common.node, object_id), number


def _fan_auto_button(
    common: _Common, device: DeviceState, prefix: str
) -> dict[str, dict[str, object]]:
    """A button that hands the fan back to the board's PID (a fixed duty turned it off)."""
    object_id = f"{slug(device.name)}_fan_auto"
    button = common.base(object_id, f"{device.name} fan automatic")
    button.update(
        command_topic=common.topics.command("set_fan"),
        payload_press=json.dumps({"device": device.name, "auto": True}),
        icon="mdi:fan-auto",
        entity_category="config",
    )
    return {_topic(prefix, "button", common.node, object_id): button}


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
    controls: list[tuple[Control, tuple[float, float] | None]] = [(FREQUENCY, FREQUENCY_LIMITS)]
    if device.board is not None:
        controls += [
            (FAN, device.board.fan_limits),
            (CORE_VOLTAGE, device.board.core_voltage_limits),
        ]
    for control, limits in controls:
        if limits is not None:
            topic, config = _number_config(common, device, control, limits, prefix)
            configs[topic] = config
    if device.board is not None and device.board.fan_limits is not None:
        configs.update(_fan_auto_button(common, device, prefix))
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
