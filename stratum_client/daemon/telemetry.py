"""The bridge between the running daemon and its telemetry: state out, commands in.

The cgminer API, the REST API and MQTT telemetry only know
:class:`~stratum_client.api.model.MinerState` and
:class:`~stratum_client.api.model.MinerControl`. This module builds the first from a
:class:`~stratum_client.daemon.app.Daemon` (:class:`StateBuilder`) and implements the
second on it (:class:`DaemonControl`), and :func:`telemetry_services` turns the
``[api]`` and ``[telemetry.mqtt]`` tables into daemon companion services.

Cost: a state is built only when a client asks (one API request) or when MQTT publishes
(every ``interval`` seconds, or after a command); the nonce path never touches this
module. One build is O(pools + chips).
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

import structlog

from stratum_client import __version__
from stratum_client.api.cgminer_server import CgminerServer
from stratum_client.api.model import (
    ChipState,
    DeviceState,
    Hashrate,
    MinerState,
    MiningState,
    PoolShares,
)
from stratum_client.api.rest_server import RestServer
from stratum_client.asic.base import AsicDriver
from stratum_client.asic.registry import chip_facts, load_driver
from stratum_client.config import Config, ListenAddress, parse_pool
from stratum_client.daemon import chip_health
from stratum_client.daemon.app import Daemon, DaemonSnapshot, Service
from stratum_client.daemon.boards import BoardChain, with_board
from stratum_client.daemon.chain import ChainRunner, ChainStatus
from stratum_client.daemon.dispatcher import DeviceSnapshot, PoolSnapshot
from stratum_client.daemon.power_estimate import PowerEstimates
from stratum_client.daemon.stats import HASHES_PER_DIFF1, HashrateReading
from stratum_client.errors import DriverError, InputError
from stratum_client.secrets import Secret
from stratum_client.telemetry.mqtt import MqttTelemetry

__all__ = [
    "COMMAND_HOLD",
    "CgminerService",
    "DaemonControl",
    "MqttService",
    "RestService",
    "StateBuilder",
    "miner_state",
    "telemetry_services",
]

COMMAND_HOLD: Final = "command"
"""The hold a pause command puts on every chain (``ChainStatus.paused_by``)."""
FREQUENCY_WAIT: Final = 30.0
"""Longest wait for a running chain to reach a requested frequency before answering."""

_log = structlog.get_logger(__name__)


# --------------------------------------------------------------------------- state


class StateBuilder:
    """A ``StateProvider`` for one daemon: call it for a fresh :class:`MinerState`.

    It caches what never changes during a run (chip models, power models) and notes
    when each chain (re)started, so ``Device Elapsed`` restarts with the chain.
    """

    def __init__(
        self,
        daemon: Daemon,
        *,
        hostname: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        driver_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.daemon = daemon
        self.hostname = hostname or socket.gethostname()
        self._wall = wall_clock
        self._driver_clock = driver_clock
        self._models: dict[str, str] = {}
        self._power = PowerEstimates(daemon.config.energy)
        self._started: dict[str, tuple[int, float]] = {}
        """Per chain: the ``starts`` count last seen and the uptime when it changed."""

    def __call__(self) -> MinerState:
        return self.build()

    def build(self) -> MinerState:
        """Everything the APIs show, read from the daemon now."""
        snap = self.daemon.snapshot()
        when = self._wall()
        mono = self._driver_clock()
        dispatch = snap.dispatch
        by_name = {device.name: device for device in dispatch.devices}
        runners = {runner.name: runner for runner in self.daemon.runners}
        devices = tuple(
            with_board(
                self._device(
                    status, runners.get(status.name), by_name.get(status.name), snap, mono
                ),
                self.daemon.boards,
            )
            for status in snap.chains
        )
        holds = sorted({reason for chain in snap.chains for reason in chain.paused_by})
        paused = bool(snap.chains) and all(chain.paused_by for chain in snap.chains)
        shares = dispatch.total.shares
        powers = [device.power_w for device in devices if device.power_w is not None]
        return MinerState(
            version=__version__,
            hostname=self.hostname,
            when=when,
            elapsed=snap.uptime,
            hashrate=_hashrate(dispatch.total.hashrate),
            accepted=dispatch.accepted,
            rejected=dispatch.rejected,
            stale=shares.stale,
            hw_errors=sum(device.hw_errors for device in devices),
            best_share=dispatch.best_share,
            difficulty_accepted=shares.accepted_difficulty,
            difficulty_rejected=shares.rejected_difficulty,
            found_blocks=dispatch.blocks_found,
            pools=snap.pools,
            devices=devices,
            power_w=sum(powers) if powers else None,
            mining=MiningState.PAUSED if paused else MiningState.RUNNING,
            pause_reason=", ".join(holds) if holds else None,
            rejected_reasons=tuple(sorted(shares.rejected_by_reason.items())),
            last_share_at=_to_wall(shares.last_share_at, dispatch.at, when),
            pool_shares=tuple(_pool_shares(pool, dispatch.at, when) for pool in dispatch.pools),
        )

    def _device(
        self,
        status: ChainStatus,
        runner: ChainRunner | None,
        stats: DeviceSnapshot | None,
        snap: DaemonSnapshot,
        mono: float,
    ) -> DeviceState:
        driver = runner.driver if runner is not None else None
        model = self._model(status.driver, driver)
        frequency = self._frequency(status, runner, model)
        chips = self._chips(status, driver, stats, mono)
        total = stats.total if stats is not None else None
        driver_hw = sum(chip.hw_errors for chip in chips)
        return DeviceState(
            name=status.name,
            model=model,
            chips=status.chips,
            frequency_mhz=frequency,
            status=chip_health.device_status(status.state, chips),
            hashrate=_hashrate(total.hashrate) if total else Hashrate(),
            accepted=total.shares.accepted if total else 0,
            rejected=total.shares.rejected if total else 0,
            hw_errors=driver_hw + (total.nonces.hw_error if total else 0),
            difficulty_accepted=total.shares.accepted_difficulty if total else 0.0,
            difficulty_rejected=total.shares.rejected_difficulty if total else 0.0,
            diff1_work=total.hashrate.total_hashes / HASHES_PER_DIFF1 if total else 0.0,
            last_share_at=_to_wall(
                total.shares.last_share_at if total else None, snap.dispatch.at, self._wall()
            ),
            power_w=self._power.watts(status, runner.device if runner else None, model, frequency),
            elapsed=self._elapsed(status, snap.uptime),
            chip_counters=chips,
        )

    def _model(self, driver_name: str, driver: AsicDriver | None) -> str:
        if driver is not None:
            return driver.model
        if driver_name not in self._models:
            try:
                self._models[driver_name] = load_driver(driver_name).model
            except DriverError:
                self._models[driver_name] = driver_name.upper()
        return self._models[driver_name]

    @staticmethod
    def _frequency(status: ChainStatus, runner: ChainRunner | None, model: str) -> float:
        """The running frequency, else the configured one, else the chip's default."""
        if status.frequency_mhz is not None:
            return status.frequency_mhz
        if runner is not None and runner.device.frequency_mhz is not None:
            return runner.device.frequency_mhz
        facts = chip_facts(model)
        return facts.default_mhz if facts is not None else 0.0

    @staticmethod
    def _chips(
        status: ChainStatus, driver: AsicDriver | None, stats: DeviceSnapshot | None, mono: float
    ) -> tuple[ChipState, ...]:
        """Per-chip health from the driver's counters (they reset with the driver)."""
        if driver is None:
            return ()
        return chip_health.chip_states(driver.counters, status.state, stats, mono)

    def _elapsed(self, status: ChainStatus, uptime: float) -> float:
        """Seconds since the chain last started: the daemon's uptime for the first start,
        else counted from the first state built after the restart."""
        if status.starts <= 1:
            return uptime if status.starts else 0.0
        seen = self._started.get(status.name)
        if seen is None or seen[0] != status.starts:
            seen = (status.starts, uptime)
            self._started[status.name] = seen
        return max(0.0, uptime - seen[1])


def miner_state(daemon: Daemon) -> MinerState:
    """One :class:`MinerState` of ``daemon`` (a :class:`StateBuilder` caches more)."""
    return StateBuilder(daemon).build()


def _pool_shares(pool: PoolSnapshot, now: float, wall_now: float) -> PoolShares:
    shares = pool.shares
    return PoolShares(
        index=pool.index,
        accepted_difficulty=shares.accepted_difficulty,
        rejected_difficulty=shares.rejected_difficulty,
        best_share=shares.best_share,
        last_share_at=_to_wall(shares.last_share_at, now, wall_now),
        diff1_shares=shares.diff1_work,
    )


def _hashrate(reading: HashrateReading) -> Hashrate:
    return Hashrate(reading.m1, reading.m5, reading.m15, reading.average)


def _to_wall(at: float | None, now: float, wall_now: float) -> float | None:
    """A daemon-clock instant as Unix time."""
    return None if at is None else wall_now - max(0.0, now - at)


# --------------------------------------------------------------------------- control


class DaemonControl:
    """:class:`~stratum_client.api.model.MinerControl` on a live daemon.

    - ``pause``/``resume`` put and lift the :data:`COMMAND_HOLD` hold on every chain.
      Other holds stay: a chain the energy governor holds keeps idling after a resume.
    - ``set_frequency`` checks the chip's PLL can reach the value first (a bad value is
      refused, never handed to the driver), then waits, bounded, for the ramp.
    - ``set_fan`` and ``set_core_voltage`` go to the chain's board (its limits refuse a bad
      value, as ``BoardLimitError``, before anything is sent).
    - pool commands go to the :class:`~stratum_client.pool.manager.PoolManager`.
    - ``restart`` and ``quit`` both begin the daemon's clean shutdown (shares drained).
      ``quit`` exits 0; ``restart`` exits :data:`~stratum_client.daemon.app.EXIT_RESTART`,
      which the shipped unit makes systemd restart (the process cannot re-execute itself).
    """

    def __init__(self, daemon: Daemon, *, frequency_wait: float = FREQUENCY_WAIT) -> None:
        self.daemon = daemon
        self.frequency_wait = frequency_wait

    async def pause(self, reason: str) -> None:
        _log.info("mining paused by command", reason=reason)
        self.daemon.pause(COMMAND_HOLD)

    async def resume(self) -> None:
        _log.info("mining resumed by command")
        self.daemon.resume(COMMAND_HOLD)

    async def set_frequency(self, device: str, mhz: float) -> float:
        runner = self._runner(device)
        driver = runner.driver
        cls = type(driver) if driver is not None else load_driver(runner.device.driver)
        try:
            reached = cls.reachable_mhz(mhz)
        except DriverError as exc:
            raise InputError("frequency", str(exc)) from None
        if reached is None:
            raise InputError("device", f"{device!r} ({cls.model}) has no frequency control")
        self.daemon.set_frequency(device, mhz)
        await self._settle(runner, reached)
        return reached

    async def _settle(self, runner: ChainRunner, target: float) -> None:
        """Wait (bounded) until the running chain reports ``target``: the ramp is done."""
        async with asyncio.timeout(self.frequency_wait):
            while True:
                driver = runner.driver
                if driver is None or math.isclose(driver.frequency_mhz, target, abs_tol=0.5):
                    return
                await asyncio.sleep(0.05)

    async def set_fan(self, device: str, percent: float | None) -> float | None:
        return await self._board(device, "fan_percent").set_fan(percent)

    async def set_core_voltage(self, device: str, volts: float) -> float:
        return await self._board(device, "core_voltage_v").set_core_voltage(volts)

    def _board(self, device: str, setting: str) -> BoardChain:
        """The board under chain ``device``, if it can change ``setting`` at all."""
        self._runner(device)
        board = self.daemon.boards.get(device)
        if board is None:
            raise InputError("device", f"{device!r} is not on a board: nothing to set there")
        if getattr(board.limits, setting) is None:
            raise InputError("device", f"{device!r} ({board.entry.spec.board}) cannot set that")
        return board

    def _runner(self, device: str) -> ChainRunner:
        try:
            return self.daemon.runner(device)
        except KeyError:
            known = ", ".join(r.name for r in self.daemon.runners) or "none"
            raise InputError("device", f"no chain named {device!r} (chains: {known})") from None

    async def switch_pool(self, index: int) -> None:
        self.daemon.manager.switch_to(index)

    async def enable_pool(self, index: int, enabled: bool) -> None:
        self.daemon.manager.set_enabled(index, enabled)

    async def add_pool(self, url: str, user: str, password: Secret) -> int:
        """Validate like a ``[[pools]]`` table, then append at the lowest priority."""
        try:
            pool = parse_pool({"url": url, "user": user, "password": password.reveal()})
        except InputError as exc:
            raise InputError("pool", exc.problem) from None
        names = {status.name for status in self.daemon.manager.statuses()}
        name, n = pool.name, 2
        while name in names:
            name, n = f"{pool.name}#{n}", n + 1
        pool = replace(pool, name=name)
        return self.daemon.manager.add_pool(pool)

    async def restart(self) -> None:
        _log.warning("restart requested: stopping cleanly; the service manager restarts us")
        self.daemon.request_restart()

    async def quit(self) -> None:
        _log.warning("quit requested: stopping cleanly")
        self.daemon.request_stop()


# --------------------------------------------------------------------------- services


class CgminerService:
    """Companion: the cgminer API on ``[api] cgminer_listen`` for the daemon's lifetime."""

    def __init__(self, config: Config) -> None:
        self.listen: ListenAddress = config.api.cgminer_listen
        self.allow = config.api.cgminer_allow
        self.server: CgminerServer | None = None
        self.ready = asyncio.Event()

    def __repr__(self) -> str:
        return f"CgminerService({self.listen})"

    async def __call__(self, daemon: Daemon) -> None:
        self.server = CgminerServer(
            self.listen, self.allow, StateBuilder(daemon), DaemonControl(daemon)
        )
        await self.server.serve(self.ready)


class RestService:
    """Companion: the AxeOS-style REST API on ``[api] rest_listen``."""

    def __init__(self, config: Config) -> None:
        self.listen: ListenAddress = config.api.rest_listen
        self.token = config.api.rest_token
        self.server: RestServer | None = None
        self.ready = asyncio.Event()
        self.ledger_path = config.energy.ledger.resolve_path(config.daemon.state_dir)
        self.history_interval = 60.0

    def __repr__(self) -> str:
        return f"RestService({self.listen})"

    async def __call__(self, daemon: Daemon) -> None:
        self.server = RestServer(
            self.listen, StateBuilder(daemon), DaemonControl(daemon), token=self.token,
            ledger_path=self.ledger_path, history_interval=self.history_interval,
        )  # fmt: skip
        await self.server.serve(self.ready)


class MqttService:
    """Companion: MQTT state, Home Assistant discovery and commands (``[telemetry.mqtt]``).

    The client reconnects on its own with backoff; the broker is never on the mining path.
    """

    def __init__(self, config: Config, *, backoff_max: float = 60.0) -> None:
        self.mqtt = config.telemetry.mqtt
        self.backoff_max = backoff_max
        self.telemetry: MqttTelemetry | None = None

    def __repr__(self) -> str:
        return f"MqttService({self.mqtt.host}:{self.mqtt.port})"

    async def __call__(self, daemon: Daemon) -> None:
        self.telemetry = MqttTelemetry(
            self.mqtt, StateBuilder(daemon), DaemonControl(daemon), backoff_max=self.backoff_max
        )
        await self.telemetry.run()


def telemetry_services(config: Config, *, mqtt_backoff_max: float = 60.0) -> list[Service]:
    """The companions ``config`` enables: cgminer API, REST API, MQTT (in that order)."""
    services: list[Service] = []
    if config.api.cgminer_enabled:
        services.append(CgminerService(config))
    if config.api.rest_enabled:
        services.append(RestService(config))
    if config.telemetry.mqtt.enabled:
        services.append(MqttService(config, backoff_max=mqtt_backoff_max))
    return services
