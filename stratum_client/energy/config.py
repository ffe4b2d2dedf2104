"""The ``[energy]`` table: policy, signal topics, per-device power figures, the ledger.

Validated the way the rest of the config is: unknown keys are errors, every error is a
:class:`ConfigError` whose field is the dotted key (``energy.signals.surplus.scale``),
and cross-checks catch a mode without the signal it needs before the daemon starts. An
absent or empty table means "off". See ``docs/energy.md`` for every key.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import cast

from stratum_client import tomlschema as ts
from stratum_client.energy.policy import (
    FAIL_SAFES,
    MODES,
    Mode,
    Policy,
    SurplusPolicy,
    ThresholdPolicy,
)
from stratum_client.energy.power import CHIP_POWER, DevicePower, chip_power
from stratum_client.energy.signals import (
    CARBON_INTENSITY,
    GRID_IMPORT,
    PRICE,
    SITE_SIGNALS,
    SURPLUS,
    SignalSpec,
    device_power_signal,
    parse_path,
)
from stratum_client.errors import ConfigError
from stratum_client.tomlschema import Table, TableContext

__all__ = [
    "DEFAULT_LEDGER_NAME",
    "DeviceEnergyConfig",
    "EnergyConfig",
    "LedgerConfig",
    "parse_energy",
]

DEFAULT_LEDGER_NAME = "energy-ledger.sqlite"
_TOP_KEYS = (
    "enabled", "mode", "fail_safe", "control_interval", "min_dwell", "surplus", "carbon",
    "price", "signals", "devices", "ledger",
)  # fmt: skip
_SIGNAL_KEYS = ("topic", "path", "scale", "invert", "max_age")
_DEVICE_KEYS = (
    "chip_model", "watts_per_chip_at_default", "static_watts", "idle_watts", "voltage_mv",
    "min_frequency_mhz", "max_frequency_mhz", "power",
)  # fmt: skip
_LEDGER_KEYS = ("enabled", "path", "interval", "surplus_g_per_kwh", "default_grid_g_per_kwh")
_MIN_FRACTION = 0.5
"""Default minimum frequency, as a fraction of the device's maximum."""


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """``[energy.ledger]``."""

    enabled: bool = True
    path: Path | None = None
    """None: ``energy-ledger.sqlite`` in ``daemon.state_dir``; relative: under it."""
    interval: float = 60.0
    surplus_g_per_kwh: float = 0.0
    default_grid_g_per_kwh: float | None = None
    """Used for grid energy while no carbon signal is fresh; None leaves it unattributed."""

    def resolve_path(self, state_dir: Path) -> Path:
        """Where the ledger file lives."""
        if self.path is None:
            return state_dir / DEFAULT_LEDGER_NAME
        return self.path if self.path.is_absolute() else state_dir / self.path


@dataclass(frozen=True, slots=True)
class DeviceEnergyConfig:
    """``[energy.devices.<name>]``: power-model overrides for one ``[[devices]]`` entry."""

    name: str
    chip_model: str | None = None
    watts_per_chip_at_default: float | None = None
    static_watts: float | None = None
    idle_watts: float = 0.0
    voltage_mv: float | None = None
    min_frequency_mhz: float | None = None
    max_frequency_mhz: float | None = None
    power: SignalSpec | None = None


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """The validated ``[energy]`` table."""

    enabled: bool = False
    policy: Policy = field(default_factory=Policy)
    signals: tuple[SignalSpec, ...] = ()
    """Site signals and every device's measured-power signal: feed a ``SignalBoard``."""
    devices: Mapping[str, DeviceEnergyConfig] = field(default_factory=lambda: MappingProxyType({}))
    ledger: LedgerConfig = field(default_factory=LedgerConfig)

    @property
    def power_signals(self) -> dict[str, str]:
        """Device name → name of its measured-power signal."""
        return {name: dev.power.name for name, dev in self.devices.items() if dev.power}

    def device_power(
        self, name: str, chip_model: str, chips: int, frequency_mhz: float | None
    ) -> DevicePower:
        """The power model of one ``[[devices]]`` entry (``chip_model`` from its driver)."""
        dev = self.devices.get(name, DeviceEnergyConfig(name))
        key = f"energy.devices.{name}"
        model = dev.chip_model or chip_model
        try:
            chip = chip_power(
                model, static_watts=dev.static_watts, watts_at_default=dev.watts_per_chip_at_default
            )
        except KeyError:
            raise ConfigError(f"{key}.chip_model", _unknown_model(model)) from None
        except ValueError as exc:
            raise ConfigError(f"{key}.static_watts", str(exc)) from None
        top = dev.max_frequency_mhz or frequency_mhz or chip.default_mhz
        bottom = dev.min_frequency_mhz or top * _MIN_FRACTION
        if bottom > top:
            raise ConfigError(
                f"{key}.min_frequency_mhz", f"{bottom:g} is above the maximum {top:g} MHz"
            )
        return DevicePower(name, chip, chips, bottom, top, dev.voltage_mv, dev.idle_watts)


def _unknown_model(model: str) -> str:
    return f"no power figures for chip {model!r}; set chip_model to one of {', '.join(CHIP_POWER)}"


# --------------------------------------------------------------------------- reading


_ANY = ts.number(-math.inf)
_POSITIVE = ts.number(0, lo_open=True)
_NON_NEGATIVE = ts.number(0)


def _signal(t: Table, name: str) -> SignalSpec:
    topic = t.require("topic", ts.text, "the MQTT topic to read")
    if any(c in topic for c in "+#\x00"):
        raise ConfigError(t.key("topic"), f"{topic!r} has a wildcard; expected one topic")
    path_text = t.optional("path", ts.text)
    try:
        path = parse_path(path_text) if path_text is not None else ()
    except ValueError as exc:
        raise ConfigError(t.key("path"), str(exc)) from None
    scale = t.get("scale", _ANY, 1.0)
    if scale == 0:
        raise ConfigError(t.key("scale"), "0 would make every reading zero")
    return SignalSpec(
        name=name,
        topic=topic,
        path=path,
        scale=scale,
        invert=t.get("invert", ts.boolean, False),
        max_age=t.get("max_age", _POSITIVE, 60.0),
    )


def _signals(t: Table) -> tuple[SignalSpec, ...]:
    read = [t.ctx.problems.attempt(partial(_named_signal, t, name), None) for name in t.data]
    return tuple(spec for spec in read if spec is not None)


def _named_signal(t: Table, name: str) -> SignalSpec:
    return _signal(t.table(name, _SIGNAL_KEYS), name)


def _device(t: Table, name: str) -> DeviceEnergyConfig:
    power = None
    if "power" in t.data:
        power = _signal(t.table("power", _SIGNAL_KEYS), device_power_signal(name))
    return DeviceEnergyConfig(
        name=name,
        chip_model=t.optional("chip_model", ts.text),
        watts_per_chip_at_default=t.optional("watts_per_chip_at_default", _POSITIVE),
        static_watts=t.optional("static_watts", _NON_NEGATIVE),
        idle_watts=t.get("idle_watts", _NON_NEGATIVE, 0.0),
        voltage_mv=t.optional("voltage_mv", _POSITIVE),
        min_frequency_mhz=t.optional("min_frequency_mhz", _POSITIVE),
        max_frequency_mhz=t.optional("max_frequency_mhz", _POSITIVE),
        power=power,
    )


def _devices(t: Table, known: Collection[str] | None) -> dict[str, DeviceEnergyConfig]:
    devices = {}
    for name in t.data:
        if known is not None and name not in known:
            listing = ", ".join(sorted(known)) or "none"
            t.note(ConfigError(t.key(name), f"no [[devices]] entry is named so (have: {listing})"))
            continue
        read = partial(_device, t.table(name, _DEVICE_KEYS), name)
        device = t.ctx.problems.attempt(read, None)
        if device is not None:
            devices[name] = device
    return devices


def _modes(t: Table) -> tuple[Mode, ...]:
    raw = t.data.get("mode", "always")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(m, str) for m in items):
        raise ConfigError(t.key("mode"), f"{ts.show(raw)} is not a mode or a list of modes")
    for mode in items:
        if mode not in MODES:
            raise ConfigError(t.key("mode"), f"{mode!r} is not a mode; expected one of {MODES}")
    if len(set(items)) != len(items) or ("always" in items and len(items) > 1):
        raise ConfigError(t.key("mode"), "list each mode once; 'always' cannot be combined")
    return tuple(cast("list[Mode]", items))


def _threshold(t: Table, name: str, limit_key: str, needed: bool) -> ThresholdPolicy | None:
    table = t.table(name, (limit_key, "margin"))
    if not needed and not table.data:
        return None
    limit = table.require(limit_key, _NON_NEGATIVE, "a number")
    return ThresholdPolicy(limit, table.get("margin", _NON_NEGATIVE, 0.05 * limit))


def _surplus(t: Table) -> SurplusPolicy:
    s = t.table("surplus", ("margin_w", "reserve_w", "net_of_miner"))
    return SurplusPolicy(
        margin_w=s.get("margin_w", _NON_NEGATIVE, 5.0),
        reserve_w=s.get("reserve_w", _NON_NEGATIVE, 0.0),
        net_of_miner=s.get("net_of_miner", ts.boolean, True),
    )


def _policy(t: Table) -> Policy:
    modes = _modes(t)
    fail_safe = t.data.get("fail_safe", "pause")
    if fail_safe not in FAIL_SAFES:
        raise ConfigError(
            t.key("fail_safe"), f"{ts.show(fail_safe)} is not one of {', '.join(FAIL_SAFES)}"
        )
    return Policy(
        modes=modes,
        fail_safe=fail_safe,
        control_interval=t.get("control_interval", _POSITIVE, 1.0),
        min_dwell=t.get("min_dwell", _NON_NEGATIVE, 300.0),
        surplus=_surplus(t),
        carbon=_threshold(t, "carbon", "max_intensity", "carbon" in modes),
        price=_threshold(t, "price", "max_price", "price" in modes),
    )


def _ledger(t: Table) -> LedgerConfig:
    path = t.optional("path", ts.text)
    return LedgerConfig(
        enabled=t.get("enabled", ts.boolean, True),
        path=None if path is None else Path(path),
        interval=t.get("interval", ts.number(1), 60.0),
        surplus_g_per_kwh=t.get("surplus_g_per_kwh", _NON_NEGATIVE, 0.0),
        default_grid_g_per_kwh=t.optional("default_grid_g_per_kwh", _NON_NEGATIVE),
    )


def _cross_check(policy: Policy, signals: tuple[SignalSpec, ...]) -> None:
    have = {s.name for s in signals}
    if "surplus" in policy.modes and not have & {SURPLUS, GRID_IMPORT}:
        raise ConfigError(
            "energy.signals.surplus", "is missing; mode 'surplus' needs a surplus or grid_import"
        )
    for mode, needed in (("carbon", CARBON_INTENSITY), ("price", PRICE)):
        if mode in policy.modes and needed not in have:
            raise ConfigError(f"energy.signals.{needed}", f"is missing; mode {mode!r} needs it")
    if policy.control_interval > 2.0:
        raise ConfigError(
            "energy.control_interval",
            f"{policy.control_interval:g} s is too slow; the governor must react within 2 s",
        )


def parse_energy(
    data: Mapping[str, object],
    device_names: Collection[str] | None = None,
    *,
    problems: ts.Problems | None = None,
) -> EnergyConfig:
    """Validate the ``[energy]`` table; ``device_names`` lets device sections be checked.

    Problems go to ``problems`` when given (the caller raises them with the rest of the
    file's); otherwise every problem found is raised here as one :class:`ConfigError`.
    """
    # The energy section names no files relative to the config (the ledger path is
    # absolute or under the state directory): no base directory or environment needed.
    ctx = TableContext(Path.cwd(), {}, problems or ts.Problems())
    attempt = ctx.problems.attempt
    top = Table(data, "energy", _TOP_KEYS, ctx)
    policy = attempt(partial(_policy, top), None)
    raw_devices = top.data.get("devices", {})
    names = tuple(raw_devices) if isinstance(raw_devices, Mapping) else ()
    devices: dict[str, DeviceEnergyConfig]
    devices = attempt(lambda: _devices(top.table("devices", names), device_names), {})
    site: tuple[SignalSpec, ...]
    site = attempt(lambda: _signals(top.table("signals", SITE_SIGNALS)), ())
    device_signals = tuple(d.power for d in devices.values() if d.power is not None)
    if policy is not None:
        attempt(partial(_cross_check, policy, site), None)
    energy = EnergyConfig(
        enabled=top.get("enabled", ts.boolean, bool(data)),
        policy=policy or Policy(),
        signals=site + device_signals,
        devices=MappingProxyType(devices),
        ledger=attempt(lambda: _ledger(top.table("ledger", _LEDGER_KEYS)), LedgerConfig()),
    )
    if problems is None:
        ctx.problems.check()
    return energy
