"""The energy governor inside the daemon: signals in, pauses and frequencies out, ledger rows.

One companion service (see :data:`~stratum_client.daemon.app.Service`) does it all, so the
order of events within a control step is fixed and easy to reason about::

    every control interval, and at once when a signal message arrives:
        count the work done since the last step (daemon snapshot → accumulator)
        decision = governor.step(now, signal board)           (MQTT keeps the board fresh)
        apply the changes: set_frequency, then resume / pause  (hold "energy" on the chain)
        integrate the decision's power into the ledger interval; commit closed intervals
        publish the state (and each closed interval) retained on MQTT

The governor's own rules do the rest: a stale, missing or garbled signal, or a broker
that has gone away (the signals simply stop arriving and turn stale), engages the
configured fail-safe, which pauses the chains in clean-only modes. Pausing is the
runner's ``hold``: no new work, the chips' queue is flushed, and nonces for work already
on the chips are still submitted. While paused a chain reports state ``paused`` with
``paused_by`` containing ``"energy"``.

A failure here never stops mining by itself: the daemon restarts a failed service, and
this one keeps its governor, its work counters and its holds across restarts so nothing
is counted twice and no dwell is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from stratum_client.asic.registry import load_driver
from stratum_client.config import Config
from stratum_client.daemon.app import Daemon, DaemonSnapshot, Service
from stratum_client.daemon.board_power import (
    board_power_signals,
    board_power_specs,
    feed_board_power,
)
from stratum_client.daemon.chain import ChainRunner
from stratum_client.daemon.energy_clocks import ScaledClocks
from stratum_client.daemon.energy_report import StepRecord, governor_state, ledger_payload
from stratum_client.energy.config import EnergyConfig
from stratum_client.energy.governor import Decision, Governor
from stratum_client.energy.intervals import IntervalAccumulator, LedgerRow
from stratum_client.energy.ledger import Ledger
from stratum_client.energy.mqtt_signals import SignalSubscriber
from stratum_client.energy.power import DevicePower
from stratum_client.energy.signals import SignalBoard
from stratum_client.errors import StratumClientError

__all__ = [
    "HOLD_REASON",
    "LEDGER_TOPIC",
    "STATE_TOPIC",
    "EnergyService",
    "StepRecord",
    "energy_services",
]

HOLD_REASON: Final = "energy"
"""The name of the governor's hold on a chain (``ChainStatus.paused_by``)."""
STATE_TOPIC: Final = "energy/state"
"""Under ``telemetry.mqtt.base_topic``: the governor's state, retained."""
LEDGER_TOPIC: Final = "energy/ledger"
"""Under ``telemetry.mqtt.base_topic``: the latest closed ledger interval, retained."""
STATE_HEARTBEAT: Final = 10.0
"""Real seconds between state publications when nothing changed."""
MIN_STEP_GAP: Final = 0.05
"""Real seconds between two control steps at least, however often signals arrive."""
MAX_UNSTORED_ROWS: Final = 10_000
"""Rows kept in memory while the ledger file cannot be written (then the oldest go)."""
SLOW_COMMIT: Final = 0.05
"""A ledger commit longer than this (seconds; the event loop waits for it) is logged."""

_log = structlog.get_logger(__name__)


def energy_services(
    config: Config, *, time_scale: float = 1.0, reconnect_max: float = 30.0
) -> list[Service]:
    """The energy companion when ``[energy]`` is enabled, else nothing (see EnergyService)."""
    if not config.energy.enabled:
        return []
    return [EnergyService(config, time_scale=time_scale, reconnect_max=reconnect_max)]


@dataclass(slots=True)
class _Seen:
    """Counters already handed to the accumulator, per device."""

    work_nonces: int = 0
    shares: int = 0
    share_difficulty: float = 0.0


class EnergyService:
    """The ``async def svc(daemon)`` companion that runs the governor and the ledger."""

    def __init__(
        self,
        config: Config,
        *,
        time_scale: float = 1.0,
        reconnect_max: float = 30.0,
        on_step: Callable[[StepRecord], None] | None = None,
    ) -> None:
        self.config = config
        self.energy: EnergyConfig = config.energy
        self._clocks = ScaledClocks(time_scale)
        self._reconnect_max = reconnect_max
        self._on_step = on_step
        self._base_topic = config.telemetry.mqtt.base_topic.rstrip("/")
        self.board = SignalBoard([*self.energy.signals, *board_power_specs(config)])
        self._board_power_fed: dict[str, float] = {}
        self.subscriber = SignalSubscriber(
            self.board,
            config.telemetry.mqtt.broker(client_suffix="-energy"),
            backoff_max=reconnect_max,
            clock=self._clocks.now,
        )
        self.governor: Governor | None = None
        self.problem: str | None = None
        """A setup problem that keeps the governor from running (shown in the state)."""
        self.last: StepRecord | None = None
        self.ledger_path: Path | None = None
        self.ledger_problem: str | None = None
        self._seen: dict[str, _Seen] = {}
        self._unstored: list[LedgerRow] = []
        self._last_state: str | None = None
        self._last_published = -math.inf
        self._fail_safe: str | None = None

    def clock(self) -> float:
        """The governor's clock (scaled monotonic seconds): signal ages and dwell use it."""
        return self._clocks.now()

    def __repr__(self) -> str:  # the daemon names services by it in its logs
        return f"EnergyService(mode={self.energy.policy.label!r})"

    async def __call__(self, daemon: Daemon) -> None:
        """Run until cancelled (the daemon's shutdown)."""
        if self.governor is None:
            try:
                self.governor = self._build_governor(daemon.runners)
            except StratumClientError as exc:
                await self._refuse(daemon, str(exc))
                return
        governor = self.governor
        accumulator = IntervalAccumulator(
            interval=self.energy.ledger.interval,
            mode=self.energy.policy.label,
            surplus_g_per_kwh=self.energy.ledger.surplus_g_per_kwh,
            default_grid_g_per_kwh=self.energy.ledger.default_grid_g_per_kwh,
        )
        # The first decision is applied before this task first yields, while the chains
        # are still opening their ports: in clean-only modes no work goes out unapproved.
        first = self._step(daemon, governor, accumulator)
        ledger: Ledger | None = None
        signals = asyncio.create_task(self.subscriber.run(), name="energy-signals")
        try:
            ledger = await self._open_ledger()
            _log.info(
                "energy governor started",
                mode=self.energy.policy.label,
                fail_safe=self.energy.policy.fail_safe,
                devices=list(governor.device_names),
                ledger=str(self.ledger_path) if ledger else None,
            )
            self._complete(ledger, *first)
            await self._control_loop(daemon, governor, accumulator, ledger)
        finally:
            signals.cancel()
            self._finish(daemon, accumulator, ledger)

    # ------------------------------------------------------------------ setup

    def _build_governor(self, runners: tuple[ChainRunner, ...]) -> Governor:
        """Power models of the daemon's chains (the ones whose driver loaded)."""
        models: list[DevicePower] = []
        for runner in runners:
            device = runner.device
            chip_model = load_driver(device.driver).model
            models.append(
                self.energy.device_power(
                    device.name, chip_model, device.chips, device.frequency_mhz
                )
            )
        signals = {**board_power_signals(self.config), **self.energy.power_signals}
        return Governor(self.energy.policy, models, signals)

    async def _refuse(self, daemon: Daemon, problem: str) -> None:
        """A config the governor cannot use: say so, apply the fail-safe, stay put."""
        self.problem = problem
        clean_only = self.energy.policy.modes != ("always",)
        _log.error("energy governor cannot run", error=problem, chains_paused=clean_only)
        if clean_only and self.energy.policy.fail_safe != "run":
            daemon.pause(HOLD_REASON)
        await asyncio.Event().wait()

    async def _open_ledger(self) -> Ledger | None:
        if not self.energy.ledger.enabled:
            return None
        path = self.energy.ledger.resolve_path(self.config.daemon.state_dir)
        self.ledger_path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ledger = await asyncio.to_thread(Ledger, path)
        except (OSError, StratumClientError) as exc:
            self.ledger_problem = str(exc)
            _log.error("energy ledger unavailable; mining goes on unrecorded", error=str(exc))
            return None
        self.ledger_problem = None
        return ledger

    # ------------------------------------------------------------------ the loop

    async def _control_loop(
        self,
        daemon: Daemon,
        governor: Governor,
        accumulator: IntervalAccumulator,
        ledger: Ledger | None,
    ) -> None:
        period = self.energy.policy.control_interval / self._clocks.scale
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.subscriber.arrived.clear()  # the step just taken has read the board
            await self._wait_for_step(started + period, started + MIN_STEP_GAP)
            self._complete(ledger, *self._step(daemon, governor, accumulator))

    async def _wait_for_step(self, deadline: float, earliest: float) -> None:
        """Until ``deadline``, or sooner when a signal arrives (but not before ``earliest``).

        Stepping on arrival makes a change take effect within the delivery latency, not
        up to a whole control interval later; the gap keeps a chatty sensor from
        turning the loop into a busy one.
        """
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(earliest - loop.time(), 0.0))
        remaining = deadline - loop.time()
        if remaining <= 0 or self.subscriber.arrived.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await self.subscriber.arrived.wait()

    def _step(
        self, daemon: Daemon, governor: Governor, accumulator: IntervalAccumulator
    ) -> tuple[StepRecord, list[LedgerRow]]:
        now, wall = self._clocks.now(), self._clocks.wall()
        snapshot = daemon.snapshot()
        self._count_work(snapshot, accumulator)
        feed_board_power(self.board, daemon.boards, now, self._board_power_fed)
        decision = governor.step(now, self.board)
        self._apply(daemon, decision)
        rows = accumulator.sample(
            wall, decision.power_samples(), decision.surplus_w, decision.carbon_intensity
        )
        record = StepRecord(now, wall, decision, snapshot)
        self.last = record
        self._report(record, daemon)
        return record, rows

    def _count_work(self, snapshot: DaemonSnapshot, accumulator: IntervalAccumulator) -> None:
        """Hand the accumulator what each chain did since the last step (from counters)."""
        for device in snapshot.dispatch.devices:
            seen = self._seen.setdefault(device.name, _Seen())
            nonces = device.total.nonces
            work = nonces.total - nonces.hw_error - nonces.duplicate
            shares = device.total.shares
            if work > seen.work_nonces:
                accumulator.nonce(device.name, device.ticket_difficulty, work - seen.work_nonces)
            if shares.accepted > seen.shares:
                accumulator.shares(
                    device.name,
                    shares.accepted - seen.shares,
                    shares.accepted_difficulty - seen.share_difficulty,
                )
            seen.work_nonces = max(work, seen.work_nonces)
            seen.shares = max(shares.accepted, seen.shares)
            seen.share_difficulty = max(shares.accepted_difficulty, seen.share_difficulty)

    def _apply(self, daemon: Daemon, decision: Decision) -> None:
        """Frequency first (the runner ramps before its next work unit), then the hold."""
        for name, want in decision.changes.items():
            _log.info(
                "energy decision",
                chain=name,
                run=want.run,
                frequency_mhz=want.frequency_mhz,
                power_w=round(want.power_w, 2),
                reason=want.reason,
            )
            try:
                if want.run:
                    if want.frequency_mhz is not None:
                        daemon.set_frequency(name, want.frequency_mhz)
                    daemon.resume(HOLD_REASON, [name])
                else:
                    daemon.pause(HOLD_REASON, [name])
            except KeyError as exc:  # a chain the daemon does not run
                _log.error("energy decision for an unknown chain", chain=name, error=str(exc))
        reason = decision.fail_safe_reason
        if reason != self._fail_safe:
            if reason is not None:
                _log.warning("energy fail-safe engaged", reason=reason)
            else:
                _log.info("energy fail-safe cleared; signals usable")
            self._fail_safe = reason

    def _complete(self, ledger: Ledger | None, record: StepRecord, rows: list[LedgerRow]) -> None:
        """Store what the step closed, then report the step (a reported step is on disk)."""
        if rows:
            self._store(ledger, rows)
        if self._on_step is not None:
            self._on_step(record)

    def _store(self, ledger: Ledger | None, rows: list[LedgerRow]) -> None:
        """Append closed intervals (one transaction) and publish the latest one.

        On the event loop, in the step that closed them, not in a worker thread: a kill -9
        then loses only the open interval, never one closed but still queued for a thread
        that a loaded machine had not scheduled yet (seen in CI). A commit is one small
        WAL append and fsync, once per interval; a slow one is logged.
        """
        self._publish(LEDGER_TOPIC, ledger_payload(rows))
        if ledger is None:
            return
        pending = [*self._unstored, *rows]
        started = time.perf_counter()
        try:
            ledger.append_many(pending)
        except StratumClientError as exc:
            self.ledger_problem = str(exc)
            self._unstored = pending[-MAX_UNSTORED_ROWS:]
            _log.error("energy ledger write failed; will retry", error=str(exc), rows=len(pending))
            return
        self._unstored = []
        self.ledger_problem = None
        took = time.perf_counter() - started
        if took > SLOW_COMMIT:
            _log.warning("energy ledger commit was slow", seconds=round(took, 3), rows=len(pending))

    def _finish(
        self, daemon: Daemon, accumulator: IntervalAccumulator, ledger: Ledger | None
    ) -> None:
        """Shutdown: count the last work, close the open interval, store it (synchronously,
        as the task is being cancelled), and close the file."""
        self._count_work(daemon.snapshot(), accumulator)
        rows = [*self._unstored, *accumulator.close(self._clocks.wall())]
        self._unstored = []
        if ledger is None:
            return
        try:
            ledger.append_many(rows)
        except StratumClientError as exc:
            _log.error("energy ledger: last interval not stored", error=str(exc), rows=len(rows))
        finally:
            ledger.close()

    # ------------------------------------------------------------------ reporting

    def state(self, daemon: Daemon | None = None) -> dict[str, object]:
        """The governor's state as published on MQTT (also for APIs)."""
        record = self.last
        chains = {r.name: r.status for r in (daemon.runners if daemon else ())}
        if record is not None and not chains:
            chains = {c.name: c for c in record.snapshot.chains}
        return governor_state(
            self.energy.policy,
            record,
            chains,
            self.board.status(self._clocks.now()),
            broker=self.board.link_problem or "connected",
            ledger=self.ledger_path,
            ledger_problem=self.ledger_problem,
            problem=self.problem,
        )

    def _report(self, record: StepRecord, daemon: Daemon) -> None:
        """Publish the state when it changed, or every STATE_HEARTBEAT real seconds."""
        state = self.state(daemon)
        shape = json.dumps({k: v for k, v in state.items() if k != "signals"}, sort_keys=True)
        real = time.monotonic()
        if shape == self._last_state and real - self._last_published < STATE_HEARTBEAT:
            return
        self._last_state, self._last_published = shape, real
        state["at"] = record.wall
        self._publish(STATE_TOPIC, json.dumps(state, default=str).encode())

    def _publish(self, topic: str, payload: bytes) -> None:
        self.subscriber.publish(f"{self._base_topic}/{topic}", payload)
