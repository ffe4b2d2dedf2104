"""The contract between the daemon and everything that reports on it or steers it.

The cgminer API, the AxeOS-style REST API and MQTT telemetry never reach into the daemon:
they read frozen :class:`MinerState` snapshots from a ``state_provider`` callable and ask
for changes through the :class:`MinerControl` protocol. So each can be tested with
hand-made states and a recording fake, and the daemon can change its insides freely.

Units are fixed here once: hashrates in hashes per second, temperatures in °C, power in
W, times in seconds (``*_at`` fields are Unix time, ``*_age`` fields are durations).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from stratum_client.asic.records import ChipCounters
from stratum_client.errors import InputError, StratumClientError
from stratum_client.pool.types import PoolStatus
from stratum_client.secrets import Secret

__all__ = [
    "BoardReadout",
    "ChipState",
    "ControlOutcome",
    "DeviceState",
    "DeviceStatus",
    "Hashrate",
    "MinerControl",
    "MinerState",
    "MiningState",
    "PoolShares",
    "PoolStatus",
    "RateSource",
    "Reading",
    "StateProvider",
    "call_control",
]

log = structlog.get_logger(__name__)


class DeviceStatus(enum.StrEnum):
    """cgminer's device states, which the APIs show verbatim."""

    ALIVE = "Alive"
    SICK = "Sick"
    """Hashing, but some chips are silent or erring."""
    DEAD = "Dead"
    INITIALISING = "Initialising"


class MiningState(enum.StrEnum):
    """Whether the daemon is sending work to the chips."""

    RUNNING = "running"
    PAUSED = "paused"


class RateSource(Protocol):
    """What :meth:`Hashrate.from_meter` reads (the daemon's ``HashrateMeter`` is one).

    A protocol rather than an import, so the API layer never depends on the daemon.
    """

    def rates(self, now: float) -> dict[str, float]: ...

    def average(self, now: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Hashrate:
    """Hashes per second over the standard windows (0.0 until a window has data)."""

    m1: float = 0.0
    m5: float = 0.0
    m15: float = 0.0
    average: float = 0.0
    """Since the meter started."""

    @classmethod
    def from_meter(cls, meter: RateSource, now: float) -> Hashrate:
        """Read a daemon meter; ``now`` is on the meter's clock."""
        rates = meter.rates(now)
        return cls(rates["1m"], rates["5m"], rates["15m"], meter.average(now))


@dataclass(frozen=True, slots=True)
class ChipState:
    """One chip's health counters, as telemetry shows them."""

    index: int
    nonces: int = 0
    hw_errors: int = 0
    duplicates: int = 0
    last_nonce_age: float | None = None
    """Seconds since the chip's last valid nonce; ``None`` if it never sent one."""
    alive: bool = True
    """The daemon's verdict (e.g. a nonce within 20× the expected interval)."""

    @classmethod
    def from_counters(
        cls, index: int, counters: ChipCounters, now: float, *, alive: bool = True
    ) -> ChipState:
        """Copy a driver's counters; ``now`` is on the clock of ``last_nonce_at``."""
        age = None if counters.last_nonce_at is None else max(0.0, now - counters.last_nonce_at)
        return cls(index, counters.nonces, counters.hw_errors, counters.duplicates, age, alive)


@dataclass(frozen=True, slots=True)
class BoardReadout:
    """What a chain's board measured at its last poll (None: not measured or failed)."""

    board: str
    """Board name, e.g. ``"bitaxe-gamma"``."""
    state: str
    """Safety state: ``mining``, ``throttled``, ``safe``, ``locked_out`` …"""
    reason: str | None = None
    """Why the board is in the safe state, when it is."""
    vr_temp_c: float | None = None
    fan_rpm: float | None = None
    fan_percent: float | None = None
    input_voltage_v: float | None = None
    input_current_a: float | None = None
    core_voltage_v: float | None = None
    """Measured core voltage (the regulator's READ_VOUT)."""
    power_w: float | None = None
    """Measured power; when set, :attr:`DeviceState.power_w` is this."""
    fan_limits: tuple[float, float] | None = None
    """The fan duty the board accepts, in percent (None: the fan is not the daemon's to
    set); what the write paths check and Home Assistant's slider spans."""
    core_voltage_limits: tuple[float, float] | None = None
    """The core voltage the board accepts, in volts (None: the board cannot set it)."""


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One chain of chips (one ``[[devices]]`` table)."""

    name: str
    model: str
    """Chip model, e.g. ``"BM1366"``."""
    chips: int
    frequency_mhz: float
    status: DeviceStatus = DeviceStatus.ALIVE
    hashrate: Hashrate = Hashrate()
    accepted: int = 0
    rejected: int = 0
    hw_errors: int = 0
    difficulty_accepted: float = 0.0
    difficulty_rejected: float = 0.0
    diff1_work: float = 0.0
    """Work done in difficulty-1 units (``HashrateMeter.total_hashes / 2**32``)."""
    last_share_at: float | None = None
    last_share_difficulty: float = 0.0
    temperature_c: float | None = None
    """``None`` when the driver has no sensor."""
    voltage_v: float | None = None
    """Core voltage, when the driver knows it."""
    power_w: float | None = None
    """Estimate from the energy power model (or a measurement)."""
    small_cores: int = 0
    """Small cores per chip (``ChipModel.small_cores``); 0 means look it up by model."""
    enabled: bool = True
    elapsed: float = 0.0
    """Seconds since the chain last started."""
    chip_counters: tuple[ChipState, ...] = ()
    board: BoardReadout | None = None
    """The board the chain runs on, when its ``[[devices]]`` table names one."""
    power_source: str = "model"
    """Where :attr:`power_w` comes from: ``"model"`` (energy figures) or ``"measured"``."""

    @property
    def chips_alive(self) -> int:
        """Chips the daemon currently considers healthy."""
        if not self.chip_counters:
            return self.chips if self.status is DeviceStatus.ALIVE else 0
        return sum(1 for chip in self.chip_counters if chip.alive)

    @property
    def nonces(self) -> int:
        return sum(chip.nonces for chip in self.chip_counters)


@dataclass(frozen=True, slots=True)
class PoolShares:
    """One pool's share figures beyond :class:`PoolStatus`'s counts (cgminer ``pools``)."""

    index: int
    accepted_difficulty: float = 0.0
    rejected_difficulty: float = 0.0
    best_share: float = 0.0
    last_share_at: float | None = None
    """Unix time of the last share the pool accepted."""
    diff1_shares: float = 0.0
    """Difficulty-1 work done on this pool's jobs (cgminer's ``Diff1 Shares``)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value beyond the fixed fields: a board's temperature, fan or power.

    Whatever fills :attr:`MinerState.readings` appears by itself as a Prometheus gauge
    ``stratum_client_<metric>`` with these labels, as a history series and as a chart
    on the dashboard. ``metric`` is lower-case words and underscores ending in its unit
    (``temperature_celsius``, ``fan_rpm``, ``power_watts``).
    """

    metric: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()
    help: str = ""


@dataclass(frozen=True, slots=True)
class MinerState:
    """Everything the APIs show, frozen at one instant (``when``)."""

    version: str
    hostname: str
    when: float
    """Unix time the snapshot was taken."""
    elapsed: float
    """Seconds since the daemon started."""
    hashrate: Hashrate = Hashrate()
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    hw_errors: int = 0
    best_share: float = 0.0
    difficulty_accepted: float = 0.0
    difficulty_rejected: float = 0.0
    difficulty_stale: float = 0.0
    found_blocks: int = 0
    pools: tuple[PoolStatus, ...] = ()
    devices: tuple[DeviceState, ...] = ()
    power_w: float | None = None
    mining: MiningState = MiningState.RUNNING
    pause_reason: str | None = None
    rejected_reasons: tuple[tuple[str, int], ...] = ()
    """(reason, count) pairs from ``ShareStats.rejected_by_reason``."""
    last_share_at: float | None = None
    mac_address: str | None = None
    """Only shown if the daemon chooses to; the APIs print a placeholder otherwise."""
    pool_shares: tuple[PoolShares, ...] = ()
    """Per-pool share figures, by pool index (absent pools show zeros)."""
    readings: tuple[Reading, ...] = ()
    """Sensor values (boards: temperatures, fans, power), see :class:`Reading`."""

    @property
    def started_at(self) -> float:
        return self.when - self.elapsed

    @property
    def active_pool(self) -> PoolStatus | None:
        """The pool shares go to now, if any."""
        return next((pool for pool in self.pools if pool.state == "active"), None)

    def shares_of(self, index: int) -> PoolShares:
        """Pool ``index``'s share figures (zeros when the daemon gave none)."""
        return next((p for p in self.pool_shares if p.index == index), PoolShares(index))

    @property
    def chips_by_model(self) -> dict[str, int]:
        """Chip count per chip model, in device order (a host may mix models)."""
        counts: dict[str, int] = {}
        for device in self.devices:
            counts[device.model] = counts.get(device.model, 0) + device.chips
        return counts


StateProvider = Callable[[], MinerState]
"""Returns the current snapshot; called on the event loop, so it must be cheap."""


class MinerControl(Protocol):
    """What the APIs may ask of the daemon.

    Raise :class:`~stratum_client.errors.InputError` for a request that cannot be
    honoured (unknown device, pool index out of range, frequency outside the chip's
    range): its message goes back to the caller. Any other ``StratumClientError`` is
    reported as a failure with its message; anything else as an internal error.
    """

    async def pause(self, reason: str) -> None:
        """Stop sending work (chips idle, pool sessions stay up)."""

    async def resume(self) -> None: ...

    async def set_frequency(self, device: str, mhz: float) -> float:
        """Ramp ``device`` to ``mhz``; returns the frequency actually reached."""

    async def set_fan(self, device: str, percent: float | None) -> float | None:
        """Hold the fan of ``device``'s board at ``percent`` (its PID off), or with None
        give the fan back to the PID; returns the duty held (None: the PID's)."""

    async def set_core_voltage(self, device: str, volts: float) -> float:
        """Set the core voltage of ``device``'s board; returns the volts set."""

    async def switch_pool(self, index: int) -> None:
        """Make pool ``index`` (config order) the active one."""

    async def enable_pool(self, index: int, enabled: bool) -> None: ...

    async def add_pool(self, url: str, user: str, password: Secret) -> int:
        """Add a pool at the lowest priority; returns its index."""

    async def restart(self) -> None:
        """Restart mining (re-read nothing; reconnect pools, restart chains)."""

    async def quit(self) -> None:
        """Shut the daemon down cleanly."""


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """How a control call ended, in words safe to send back to any client.

    ``error`` does not repeat the command; each API prefixes it in its own idiom.
    """

    ok: bool
    error: str | None = None
    value: float | int | None = None
    rejected: bool = False
    """The daemon refused the request as invalid (``InputError``), not a failure."""


async def call_control(
    call: Callable[[], Awaitable[float | int | None]], *, within: float, what: str
) -> ControlOutcome:
    """Run one control call with a deadline, turning every failure into an outcome.

    A client must get an answer even when the daemon refuses or breaks, and a bug in
    the daemon must not kill the API server; only ``InputError`` and our own errors
    carry their message out, anything else is logged here and reported generically.
    """
    try:
        async with asyncio.timeout(within):
            value = await call()
    except TimeoutError:
        log.warning("control call timed out", command=what, seconds=within)
        return ControlOutcome(False, f"timed out after {within:g} s")
    except InputError as exc:
        return ControlOutcome(False, str(exc), rejected=True)
    except StratumClientError as exc:
        return ControlOutcome(False, str(exc))
    except Exception:
        log.exception("control call failed", command=what)
        return ControlOutcome(False, "internal error")
    return ControlOutcome(True, None, value)
