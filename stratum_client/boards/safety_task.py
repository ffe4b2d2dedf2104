"""The safety task: polls one board and carries out what :mod:`.safety` decides.

A thin shell: every ``poll_interval_s`` it reads the board, hands the readings and
``now`` to :class:`~stratum_client.boards.safety.SafetyPolicy` and executes the actions
in order. Entering the safe state calls the daemon's ``stop_dispatch`` hook first (so no
new work goes to chips about to lose power; nonces already found are the daemon's to
finish), then :meth:`Board.safe_state`. A failed read, a failed fan write (as the Bitaxe
firmware treats it), a failed recovery or any other exception is itself a reason for the
safe state, at once. While the board is off, a safe state
that could not be completed is retried every poll.

Used as an async context manager, the task also owns the shutdown path: on a normal exit
the board is powered down, on an exception it is put into the safe state, and either way
the core voltage is off and reset asserted when ``async with`` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import structlog

from .base import Board, BoardReadings
from .clock import Clock, MonotonicClock
from .errors import BoardError, SafeStateError
from .safety import (
    Action,
    EnterSafeState,
    Recover,
    SafetyConfig,
    SafetyPolicy,
    SafetySnapshot,
    SetFan,
    SetFrequency,
    StayOff,
    Transition,
)

__all__ = ["BoardStatus", "SafetyHooks", "SafetyTask"]

_log = structlog.get_logger(__name__)


async def _nothing(*_args: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SafetyHooks:
    """What the daemon does for the safety task (each defaults to nothing)."""

    stop_dispatch: Callable[[str], Awaitable[None]] = _nothing
    """Stop sending work to the board's chains (the reason is given); before power off.
    Called again each time an incomplete safe state is retried, so it must be idempotent."""
    resume: Callable[[float | None], Awaitable[None]] = _nothing
    """After a recovery power-up: restart the chains (at this frequency) and dispatch."""
    set_frequency: Callable[[float], Awaitable[None]] = _nothing
    """Ramp the board's chains to this frequency (through the chip driver)."""
    on_status: Callable[[BoardStatus], None] | None = None
    """Called after every poll with the new status (telemetry, APIs)."""


@dataclass(frozen=True, slots=True)
class BoardStatus:
    """What the daemon publishes about one board after each poll."""

    board: str
    safety: SafetySnapshot
    readings: BoardReadings | None
    safe_state_ok: bool
    """False while a safe state was wanted but at least one step of it failed."""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        readings = self.readings
        values = {}
        if readings is not None:
            for name in ("asic_temp_c", "vr_temp_c", "fan_rpm", "fan_duty_pct", "vin_v",
                         "iin_a", "vout_v", "iout_a", "power_w"):  # fmt: skip
                values[name] = getattr(readings, name).value
        return {
            "board": self.board,
            **self.safety.as_dict(),
            "safe_state_ok": self.safe_state_ok,
            "error": self.error,
            "readings": values,
        }


def _nominal_frequency(board: Board) -> float | None:
    try:
        chains = board.chains
    except BoardError:  # a serial board without a driver configured: nothing to throttle
        return None
    return chains[0].frequency_mhz if chains else None


class SafetyTask:
    """The poll loop for one board; ``async with`` runs it and owns the shutdown."""

    def __init__(
        self,
        board: Board,
        config: SafetyConfig | None = None,
        hooks: SafetyHooks | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.board = board
        self.config = config or SafetyConfig()
        self.hooks = hooks or SafetyHooks()
        self.clock = clock or MonotonicClock()
        frequency = _nominal_frequency(board)
        span = board.limits.frequency_mhz
        self.policy = SafetyPolicy(
            self.config,
            board.sensors,
            self.clock.now(),
            frequency_mhz=frequency,
            min_frequency_mhz=span.low if span is not None else None,
            fixed_fan_pct=board.spec.fan_percent,
        )
        self.status = BoardStatus(board.label, self.policy.snapshot, None, True)
        self.history: list[tuple[float, BoardReadings]] = []
        """(now, readings) of recent polls, newest last (bounded), for tests and benches."""
        self._safe_ok = True
        self._task: asyncio.Task[None] | None = None
        self._log = _log.bind(board=board.label)

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll forever at ``poll_interval_s`` (cancel to stop)."""
        interval = self.config.poll_interval_s
        try:
            while True:
                started = self.clock.now()
                await self.poll_once()
                elapsed = self.clock.now() - started
                await self.clock.sleep(max(0.0, interval - elapsed))
        except Exception as exc:
            self._log.error("safety loop failed: safe state", error=repr(exc))
            await self._enter_safe(f"safety loop failed: {exc!r}")
            raise

    async def poll_once(self) -> list[Action]:
        """One poll: read, decide, act; returns what was decided."""
        now = self.clock.now()
        error: str | None = None
        readings: BoardReadings | None = None
        try:
            readings = await self.board.readings()
        except Exception as exc:  # any failure to read is a reason to stop
            error = f"readings failed: {exc!r}"
            actions = self.policy.fail(error, now)
        else:
            self._remember(now, readings)
            actions = self.policy.step(readings, now)
            if self.policy.off and not self._safe_ok and not actions:
                actions = [EnterSafeState(f"retry: {self.policy.reason}")]
        unplugged = readings is not None and readings.link_lost
        error = await self._execute(actions, now, unplugged=unplugged) or error
        self._publish(readings, error)
        return actions

    def _remember(self, now: float, readings: BoardReadings) -> None:
        self.history.append((now, readings))
        del self.history[: max(0, len(self.history) - 4096)]

    async def _execute(self, actions: list[Action], now: float, *, unplugged: bool) -> str | None:
        error = None
        for action in actions:
            try:
                await self._do(action)
            except Exception as exc:  # a failed action must not end the loop
                error = f"{type(action).__name__} failed: {exc}"
                self._log.error("safety action failed", action=repr(action), error=str(exc))
                if not isinstance(action, EnterSafeState):
                    await self._fail(error, now, unplugged=unplugged)
                    return error
        return error

    async def _fail(self, reason: str, now: float, *, unplugged: bool) -> None:
        """An action failed (a fan write that did not take, a failed power-up): safe state."""
        for follow in self.policy.fail(reason, now, unplugged=unplugged):
            if isinstance(follow, Transition):
                self._log_transition(follow)
        try:
            await self._enter_safe(reason)
        except SafeStateError as exc:
            self._log.error("safe state incomplete", error=str(exc))

    async def _do(self, action: Action) -> None:
        match action:
            case SetFan(percent):
                if self.board.limits.fan_percent is not None:  # else the fan is not ours
                    await self.board.set_fan(percent)
            case SetFrequency(mhz, reason):
                self._log.info("board frequency", mhz=mhz, reason=reason)
                await self.hooks.set_frequency(mhz)
            case EnterSafeState(reason):
                await self._enter_safe(reason)
            case Recover(reason, mhz):
                await self.board.power_up()
                self._safe_ok = True
                await self.hooks.resume(mhz)
            case StayOff(reason):
                self._log.error("board stays off", reason=reason)
            case Transition():
                self._log_transition(action)

    async def _enter_safe(self, reason: str) -> None:
        try:
            await self.hooks.stop_dispatch(reason)
        except Exception as exc:  # the power still goes off
            self._log.error("stop_dispatch hook failed", error=repr(exc))
        try:
            await self.board.safe_state()
        except SafeStateError:
            self._safe_ok = False
            raise
        self._safe_ok = True

    def _log_transition(self, transition: Transition) -> None:
        log = self._log.warning if transition.new in ("safe", "locked_out") else self._log.info
        log("board state", old=str(transition.old), new=str(transition.new),
            reason=transition.reason)  # fmt: skip

    def _publish(self, readings: BoardReadings | None, error: str | None) -> None:
        self.status = BoardStatus(
            self.board.label, self.policy.snapshot, readings, self._safe_ok, error
        )
        if self.hooks.on_status is not None:
            self.hooks.on_status(self.status)

    # -- user settings --------------------------------------------------------------------

    async def set_fan(self, percent: float | None) -> float | None:
        """Hold the fan at ``percent`` (checked against the board's limits; the PID off),
        or None: the PID drives it again. While the board is off the fan stays at 100 %
        and the setting takes effect after the recovery."""
        if percent is not None:
            percent = self.board.check_fan(percent)
        self.policy.hold_fan(percent)
        if percent is not None and not self.policy.off:
            await self.board.set_fan(percent)
        self._log.info("fan set", percent=percent if percent is not None else "auto")
        return percent

    async def set_core_voltage(self, volts: float) -> float:
        """Change the core voltage (checked against the board's limits): at once while the
        board is on, else from its next power-up."""
        volts = self.board.check_core_voltage(volts)
        await self.board.set_core_voltage(volts)
        self._log.info("core voltage set", volts=volts)
        return volts

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def polling(self) -> bool:
        """Whether the poll loop is running."""
        return self._task is not None and not self._task.done()

    async def __aenter__(self) -> Self:
        """Start polling, unless the board measures nothing (``serial``): then only the
        shutdown path is owned."""
        if self.board.sensors:
            self._task = asyncio.create_task(self.run(), name=f"safety {self.board.label}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(failed=exc_type is not None and exc_type is not GeneratorExit)

    async def shutdown(self, *, failed: bool = False) -> None:
        """Stop polling; then power down (normal) or safe state (after a failure)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if failed:
            self._log.warning("board shutdown after a failure: safe state")
            await self._enter_safe("shutdown after a failure")
        else:
            await self.board.power_down()
        self._log.info("board off", vout=self.board.core_off, reset="asserted")
