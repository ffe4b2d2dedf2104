"""The daemon: one pool manager, one dispatcher, one runner per chain, under one TaskGroup.

The pieces it wires do the real work; this module only moves their outputs to their
inputs. Pool events go through the dispatcher, whose actions fan out to the pool
(submit) and the chains (flush, version mask); nonces go from each chain through the
dispatcher back to the pool. Everything runs on one event loop, so the hand-offs are
plain calls without locks.

Around that sit the operational duties of a systemd service: READY=1 once mining has
started, a one-line STATUS= and watchdog pings every second, SIGHUP to reload the pool
list, and SIGTERM/SIGINT to stop cleanly: stop sending work, give submits in flight
``drain_timeout`` seconds to be answered, stop the chains and leave with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

import structlog

from stratum_client.asic.base import AsicDriver, FoundNonce
from stratum_client.config import Config, DeviceConfig, load_config
from stratum_client.daemon.boards import BoardChain, board_chains, chain_task
from stratum_client.daemon.chain import ChainRunner
from stratum_client.daemon.chain_drivers import resolve_drivers
from stratum_client.daemon.dispatcher import (
    Action,
    ChainSpec,
    Dispatcher,
    FlushChains,
    SetVersionMask,
    SubmitShare,
)
from stratum_client.daemon.reload import sections_needing_restart
from stratum_client.daemon.signals import signal_handlers
from stratum_client.daemon.snapshot import DaemonSnapshot, format_hashrate, status_line
from stratum_client.errors import StratumClientError
from stratum_client.logsetup import register_secret
from stratum_client.pool.manager import PoolManager
from stratum_client.pool.types import ManagerEvent, SessionEvent
from stratum_client.protocol import events as ev
from stratum_client.sdnotify import Notifier, watchdog_interval
from stratum_client.work.job import Work

__all__ = [
    "EXIT_RESTART",
    "Daemon",
    "DaemonSnapshot",
    "Observer",
    "Service",
    "format_hashrate",
    "status_line",
]

Observer = Callable[[object], None]
"""Told of every pool event (``ManagerEvent``) and every :meth:`Daemon.announce`-d notice,
on the event loop; it must return at once (queue, never await). An observer that raises
is logged and mining goes on."""
Service = Callable[["Daemon"], Awaitable[None]]
"""A companion task (APIs, telemetry, energy governor) run beside mining.

It gets the daemon to read snapshots from and to steer it; it is cancelled on shutdown.
If it fails it is logged and restarted after a pause: no companion may stop mining.
"""
SERVICE_RETRY: Final = 5.0
"""Pause before restarting a companion service that failed."""
STATUS_INTERVAL: Final = 1.0
"""Seconds between STATUS= updates (and status callbacks)."""
READY_WAIT: Final = 60.0
"""Longest wait for every chain's first start attempt before READY=1 is sent anyway."""
CHAIN_STOP_TIMEOUT: Final = 5.0
"""Longest wait for drivers to stop on shutdown."""
EXIT_RESTART: Final = 75
"""Exit status after a requested restart (EX_TEMPFAIL): a process cannot re-execute itself
cleanly, so it stops cleanly and asks the service manager to start it again (the shipped
unit lists 75 in ``RestartForceExitStatus=`` and ``SuccessExitStatus=``)."""

_log = structlog.get_logger(__name__)


class Daemon:
    """Runs the whole miner until told to stop; :meth:`run` returns the exit status."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
        emit_status: Callable[[str], None] | None = None,
        on_reload: Callable[[Config], None] | None = None,
        handle_signals: bool = True,
        services: Sequence[Service] = (),
    ) -> None:
        self._config = config
        self._config_path = config_path
        self._clock = clock
        self._notifier = notifier if notifier is not None else Notifier()
        self._emit_status = emit_status
        self._on_reload = on_reload
        self._handle_signals = handle_signals
        self._services = tuple(services)
        self._observers: list[Observer] = []
        self._started_at = clock()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._stopping = False
        self._exit_status = 0
        _register_secrets(config)
        drivers, self._unavailable = resolve_drivers(config.devices)
        self._manager = PoolManager(
            config.pools,
            config.pool_policy,
            sink=self._on_manager_event,
            user_agent=config.daemon.user_agent,
            clock=clock,
        )
        self._dispatcher = Dispatcher(
            [_chain_spec(device, cls) for device, cls in drivers],
            job_tables=self._manager.job_table,
            pending_limit=config.pool_policy.pending_share_limit,
        )
        self._runners = [ChainRunner(device, self, clock=clock) for device, _ in drivers]
        self._boards = board_chains(self._runners, lambda: self._stopping, config.daemon.state_dir)

    # -- public control -------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The config in force (pools and logging follow SIGHUP reloads)."""
        return self._config

    @property
    def manager(self) -> PoolManager:
        return self._manager

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def runners(self) -> tuple[ChainRunner, ...]:
        return tuple(self._runners)

    @property
    def boards(self) -> dict[str, BoardChain]:
        """The chains that run on a board, by chain name."""
        return self._boards

    def runner(self, name: str) -> ChainRunner:
        """The runner of chain ``name``; KeyError names the chains there are."""
        for runner in self._runners:
            if runner.name == name:
                return runner
        known = ", ".join(r.name for r in self._runners) or "none"
        raise KeyError(f"no chain named {name!r} (chains: {known})")

    def pause(self, reason: str, chains: Sequence[str] | None = None) -> None:
        """Hold ``chains`` (default: all) paused on behalf of ``reason``."""
        for runner in self._select(chains):
            runner.hold(reason)

    def resume(self, reason: str, chains: Sequence[str] | None = None) -> None:
        """Release ``reason``'s hold on ``chains`` (default: all)."""
        for runner in self._select(chains):
            runner.release(reason)

    def set_frequency(self, chain: str, mhz: float) -> None:
        """Ramp chain ``chain`` to ``mhz`` through its driver (KeyError if unknown)."""
        self.runner(chain).request_frequency(mhz)

    def _select(self, chains: Sequence[str] | None) -> list[ChainRunner]:
        if chains is None:
            return list(self._runners)
        return [self.runner(name) for name in chains]

    def observe(self, observer: Observer) -> None:
        """Add an observer (a companion service registers itself when it starts)."""
        self._observers.append(observer)

    def announce(self, notice: object) -> None:
        """Tell every observer of ``notice`` (pool events, a board entering safe state)."""
        for observer in self._observers:
            try:
                observer(notice)
            except Exception:
                _log.exception("observer failed", observer=repr(observer))

    def request_stop(self) -> None:
        """Begin a clean shutdown (SIGTERM); asking again cuts the share drain short."""
        if self._stop.is_set():
            _log.warning("already stopping; cutting the share drain short")
            self._force.set()
        self._stop.set()

    def request_restart(self) -> None:
        """Stop cleanly as :meth:`request_stop` does, then exit with :data:`EXIT_RESTART`."""
        self._exit_status = EXIT_RESTART
        self.request_stop()

    def request_reload(self) -> None:
        """Re-read the config file's pool list and log levels (SIGHUP)."""
        asyncio.get_running_loop().create_task(self._reload(), name="daemon-reload")

    def snapshot(self) -> DaemonSnapshot:
        now = self._clock()
        return DaemonSnapshot(
            uptime=now - self._started_at,
            stopping=self._stopping,
            pools=tuple(self._manager.statuses()),
            dispatch=self._dispatcher.snapshot(now),
            chains=tuple(r.status for r in self._runners),
            unavailable=self._unavailable,
        )

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> int:
        """Mine until stopped; 0 after a clean stop, :data:`EXIT_RESTART` after a requested
        restart, 1 if a component failed."""
        handlers: dict[signal.Signals, Callable[[], None]] = {}
        if self._handle_signals:
            handlers = {
                signal.SIGTERM: self.request_stop,
                signal.SIGINT: self.request_stop,
                signal.SIGHUP: self.request_reload,
            }
        _log.info(
            "daemon starting",
            pools=[p.name for p in self._config.pools],
            chains=[r.name for r in self._runners],
        )
        failed = False
        try:
            with signal_handlers(handlers):
                await self._supervise()
        except* Exception as group:
            _log.error("daemon failed", exc_info=group)
            failed = True
        finally:
            self._notifier.close()
        status = 1 if failed else self._exit_status
        _log.info("daemon stopped", failed=failed, exit_status=status)
        return status

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            manager = tasks.create_task(self._manager.run(), name="pool-manager")
            chains = [
                tasks.create_task(chain_task(runner, self._boards), name=f"chain-{runner.name}")
                for runner in self._runners
            ]
            status = tasks.create_task(self._status_loop(), name="daemon-status")
            services = [
                tasks.create_task(self._keep_running(service), name=f"service-{i}")
                for i, service in enumerate(self._services)
            ]
            await self._announce_ready()
            await self._stop.wait()
            await self._shut_down(chains)
            await self._manager.close()
            manager.cancel()
            status.cancel()
            for task in services:
                task.cancel()

    async def _keep_running(self, service: Service) -> None:
        """Run a companion; log and restart it if it fails, so mining never stops for it."""
        name = getattr(service, "__qualname__", repr(service))
        while True:
            try:
                await service(self)
                return
            except Exception:
                _log.exception("service failed; restarting", service=name, retry_in=SERVICE_RETRY)
            await asyncio.sleep(SERVICE_RETRY)

    async def _announce_ready(self) -> None:
        """READY=1 once every chain has tried to start (or after READY_WAIT, or on stop)."""
        tried = asyncio.create_task(_all_set([r.first_attempt for r in self._runners]))
        stop = asyncio.create_task(_all_set([self._stop]))
        await asyncio.wait([tried, stop], timeout=READY_WAIT, return_when=asyncio.FIRST_COMPLETED)
        tried.cancel()
        stop.cancel()
        if not self._stop.is_set():
            self._notifier.ready(status_line(self.snapshot()))
            _log.info("daemon ready")

    async def _shut_down(self, chains: list[asyncio.Task[None]]) -> None:
        """Stop the chains first so that every share they found is submitted, then
        give the pool ``drain_timeout`` to answer all of them."""
        self._stopping = True
        self._notifier.stopping("draining shares")
        for runner in self._runners:
            runner.pause_work()
        for task in chains:
            task.cancel()
        if chains:
            _, late = await asyncio.wait(chains, timeout=CHAIN_STOP_TIMEOUT)
            if late:
                _log.warning("chains did not stop in time", chains=len(late))
        unanswered = await self._drain()
        _log.info("share drain finished", unanswered=unanswered)

    async def _drain(self) -> int:
        """Submits still unanswered after ``drain_timeout`` (or a second signal)."""
        timeout = self._config.pool_policy.drain_timeout
        drain = asyncio.create_task(self._manager.drain(timeout), name="pool-drain")
        force = asyncio.create_task(self._force.wait())
        await asyncio.wait([drain, force], return_when=asyncio.FIRST_COMPLETED)
        force.cancel()
        if not drain.done():
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            return -1
        return drain.result()

    # -- status ---------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        interval = watchdog_interval()
        next_ping = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if interval is not None and now >= next_ping:
                self._notifier.watchdog()
                next_ping = now + interval
            line = status_line(self.snapshot())
            self._notifier.status(line)
            if self._emit_status is not None:
                self._emit_status(line)
            await asyncio.sleep(STATUS_INTERVAL)

    # -- reload ---------------------------------------------------------------------------

    async def _reload(self) -> None:
        if self._config_path is None:
            _log.warning("reload requested but the daemon was not started from a file")
            return
        self._notifier.reloading()
        try:
            new = load_config(self._config_path)
        except StratumClientError as exc:
            _log.error("reload failed; keeping the running config", error=str(exc))
        else:
            self._apply_reload(new)
        self._notifier.ready(status_line(self.snapshot()))

    def _apply_reload(self, new: Config) -> None:
        _register_secrets(new)
        if self._on_reload is not None:
            self._on_reload(new)
        needs_restart = sections_needing_restart(self._config, new)
        if needs_restart:
            _log.warning(
                "these config sections changed but take effect only after a restart",
                sections=needs_restart,
            )
        self._manager.reload(new.pools)
        self._config = replace(self._config, pools=new.pools, daemon=new.daemon)
        _log.info("config reloaded", pools=[p.name for p in new.pools])

    # -- the wiring (WorkFeed for the runners, sink for the manager) --------------------

    def next_work(self, chain: str, now: float) -> Work | None:
        return self._dispatcher.next_work(chain, now)

    def on_nonce(self, chain: str, found: FoundNonce, now: float) -> None:
        self._apply(self._dispatcher.on_nonce(chain, found, now))

    def _on_manager_event(self, event: ManagerEvent) -> None:
        self._apply(self._dispatcher.on_manager_event(event, self._clock()))
        self.announce(event)
        if isinstance(event, SessionEvent) and isinstance(event.event, ev.NewJob):
            for runner in self._runners:
                runner.wake()

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case SubmitShare(share=share):
                    if not self._manager.submit(share):
                        self._dispatcher.submit_refused(share, self._clock())
                case FlushChains():
                    for runner in self._runners:
                        runner.flush()
                case SetVersionMask(mask=mask):
                    for runner in self._runners:
                        runner.set_version_mask(mask)


async def _all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def _register_secrets(config: Config) -> None:
    for secret in config.secrets():
        register_secret(secret)


def _chain_spec(device: DeviceConfig, cls: type[AsicDriver]) -> ChainSpec:
    """What the dispatcher needs; chips take the ticket rounded down to a power of two."""
    ticket = 2.0 ** math.floor(math.log2(device.ticket_difficulty))
    return ChainSpec(
        name=device.name,
        midstates=cls.midstates,
        chips=device.chips,
        ticket_difficulty=ticket * device.difficulty_scale,
    )
