"""The validated configuration: frozen typed dataclasses, one per TOML table.

:mod:`stratum_client.config` builds these from ``config.toml``; the rest of the code
reads them and trusts their types and ranges. See ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from stratum_client import __version__
from stratum_client.alerts.config import AlertsConfig
from stratum_client.asic.records import DeviceSpec
from stratum_client.boards.config import BoardEntry
from stratum_client.energy.config import EnergyConfig, parse_energy
from stratum_client.eventloop import EventLoopChoice
from stratum_client.mqtt_session import Broker
from stratum_client.secrets import Secret
from stratum_client.work.versionroll import DEFAULT_VERSION_BITS_FORM, VersionBitsForm

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApiConfig",
    "Config",
    "DaemonConfig",
    "DeviceConfig",
    "IPNetwork",
    "ListenAddress",
    "LogFormat",
    "MqttConfig",
    "PoolConfig",
    "PoolPolicy",
    "TelemetryConfig",
]

DEFAULT_CONFIG_PATH = Path("/etc/stratum-client/config.toml")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LogFormat = Literal["auto", "json", "console"]


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
    submit_block_candidates_below_difficulty: bool = True
    """``false`` for pools that judge difficulty before blocks (public-pool)."""


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
    board: BoardEntry | None = None
    """Set when the table names a ``board``: the daemon runs the chain under it."""

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
