"""Boards in the daemon: each ``[[devices]]`` table with a ``board`` runs its chain inside a
:class:`~stratum_client.boards.runner.BoardRunner`.

The chain's :class:`~stratum_client.daemon.chain.ChainRunner` is started only once the
board is powered up, and the safety task's hooks steer it: ``stop_dispatch`` holds the
chain (no new work; nonces already read are still classified and submitted) and stops
its driver before the rail goes off; ``resume`` restarts the driver after a recovery
power-up; ``set_frequency`` ramps it. The APIs' fan and core-voltage writes go through
the board's safety task (:meth:`BoardChain.set_fan`, :meth:`BoardChain.set_core_voltage`)
and are kept for the board's later sessions. Leaving the task switches the board off on every
way out: a clean stop (SIGTERM, normal exit) powers it down, a failure elsewhere in the
daemon (the task group cancels this task while the daemon is not stopping) puts it in
the safe state. Either way VOUT is off and reset asserted.

A data port (the ASIC UART, on a board with a separate control port) that vanishes on
its own while the board mines ends the session the same way (safe state): the chips'
state is unknown once their UART went away, so when the port returns the board comes
back through the full power-up sequence before the chip driver enumerates again. When the
control port went with it (the whole USB device was pulled), the safe state cannot reach
the board: the board is reported off with ``safe_state_ok`` false, and the next session,
once every port is back, switches it off first (``open``) and powers it up from scratch,
with no failure counted and no retry pause. A session that ends for any reason publishes
the board as ``safe``, so the last poll's ``mining`` never outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import structlog

from stratum_client.api.model import BoardReadout, DeviceState
from stratum_client.boards.base import Board, BoardLimits, Range, Reading
from stratum_client.boards.errors import BoardError, SafeStateError
from stratum_client.boards.registry import load_board
from stratum_client.boards.runner import BoardRunner
from stratum_client.boards.safety import BoardState
from stratum_client.boards.safety_task import BoardStatus, SafetyHooks, SafetyTask
from stratum_client.config import DeviceConfig
from stratum_client.daemon.board_settings import BoardSettingsStore
from stratum_client.daemon.chain import ChainRunner

__all__ = ["SAFETY_HOLD", "BoardChain", "board_chains", "chain_task", "with_board"]

SAFETY_HOLD: Final = "safety"
"""The hold the safety task puts on a board's chain while the board is off."""

RETRY_INITIAL: Final = 1.0
"""First pause before trying again a board that failed to come up."""
RETRY_MAX: Final = 60.0
"""Longest pause between those attempts."""
DATA_PORT_POLL: Final = 0.1
"""How often a board's data port is looked for (gone while mining, back after)."""

_log = structlog.get_logger(__name__)


class DataPortLostError(BoardError):
    """A board's data port (its ASIC UART) vanished while the board was mining."""


def _present(port: str) -> bool:
    """Whether the port's device node exists: a stat, no I/O on the device. A USB port
    comes and goes with no event to wait on here, so the callers poll this."""
    return os.path.exists(port)


class BoardChain:
    """One board and the chain on it, for the daemon's task group (:meth:`run`)."""

    def __init__(
        self,
        device: DeviceConfig,
        runner: ChainRunner,
        stopping: Callable[[], bool],
        store: BoardSettingsStore,
    ) -> None:
        assert device.board is not None, "only [[devices]] tables with a board"
        self.device = device
        self.entry = device.board
        self.runner = runner
        self._stopping = stopping
        self._store = store
        self._chain: asyncio.Task[None] | None = None
        self.status: BoardStatus | None = None
        """The last poll's status (None before the first poll)."""
        self.last_poll: BoardStatus | None = None
        """The safety task's last status while the board was up (kept after it is off)."""
        self.board: Board | None = None
        self.failures = 0
        """Times the board failed to come up (or to switch off) since the daemon started."""
        self.last_error = ""
        self._safety: SafetyTask | None = None
        self._settings = store.settings(device.name, self.limits)
        """The APIs' fan/core-voltage settings, as ``BoardSpec`` fields for later sessions
        (and, through the store, later runs)."""

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def limits(self) -> BoardLimits:
        """What the board allows (its class's facts; no session needed)."""
        return load_board(self.entry.spec.board).limits

    async def run(self) -> None:
        """Run the board until cancelled. A board that fails to come up is left switched
        off and tried again after a doubling pause, so one bad board stops no other."""
        pause = RETRY_INITIAL
        while True:
            try:
                await self._session()
            except DataPortLostError as exc:
                _log.warning("board data port gone: switched off; full power-up when it is back",
                             board=self.name, error=str(exc))  # fmt: skip
                await self._ports_back()
                pause = RETRY_INITIAL
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._stopping():
                    _log.error(
                        "board failed while stopping", board=self.name, error=self.last_error
                    )
                    return
                _log.error("board failed; switched off, will retry", board=self.name,
                           error=self.last_error, retry_in=pause)  # fmt: skip
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)

    async def _session(self) -> None:
        """Power the board up, mine on it until cancelled, then switch it off."""
        spec = replace(self.entry.spec, name=self.entry.spec.name or self.device.name)
        spec = replace(spec, **self._settings)  # type: ignore[arg-type]
        board = self.board = load_board(spec.board)(spec)
        hooks = SafetyHooks(self._stop_dispatch, self._resume, self._set_frequency, self._on_status)
        try:
            cancelled = await self._powered(board, hooks)
        except SafeStateError as exc:
            lost = exc.__context__  # what ended the session before the safe state failed
            unplugged = isinstance(lost, DataPortLostError) and not self._all_ports_present()
            self._switched_off(str(lost) if unplugged else str(exc), safe_state_ok=False)
            if not unplugged or lost is None:
                raise
            # The whole device went (control port too): nothing could reach the board. Its
            # next session switches it off first (open) before the full power-up.
            _log.error("board unplugged: safe state could not reach it", board=self.name,
                       error=str(exc))  # fmt: skip
            raise lost from exc
        except BaseException as exc:
            self._switched_off(str(exc) if isinstance(exc, DataPortLostError) else
                               f"session ended: {type(exc).__name__}")  # fmt: skip
            raise
        self._switched_off("stopped")
        _log.info("board off", board=board.label, core=board.core_off)
        if cancelled:
            raise asyncio.CancelledError

    async def _powered(self, board: Board, hooks: SafetyHooks) -> bool:
        """The board up, its chain mining, until the data port goes (raised) or the task is
        cancelled (True when the daemon is stopping, else raised); then the board off."""
        async with BoardRunner(board, self.entry.safety, hooks) as runner:
            _log.info("board up; starting its chain", board=board.label)
            self.runner.release(SAFETY_HOLD)  # a fresh power-up: the last session's hold ends
            self._start_chain()
            self._safety = runner.safety
            try:
                await self._data_port_lost(board, runner.safety)
            except asyncio.CancelledError:
                if not self._stopping():
                    raise  # a failure elsewhere: the runner puts the board in the safe state
                return True
            finally:
                self._safety = None
                await self._stop_chain()
        return False

    def _switched_off(self, reason: str, *, safe_state_ok: bool = True) -> None:
        """Publish that the session ended with the board off (the last poll said more)."""
        if self.status is not None:
            if self.status.readings is not None:
                self.last_poll = self.status
            safety = replace(self.status.safety, state=BoardState.SAFE, reason=reason)
            self.status = replace(self.status, safety=safety, readings=None,
                                  safe_state_ok=safe_state_ok)  # fmt: skip

    # -- the data port ------------------------------------------------------------------

    def _data_port(self, board: Board) -> str | None:
        """The chain's port when the board has a separate control port, else None."""
        return board.chains[0].port if len(board.port_roles) > 1 else None

    async def _data_port_lost(self, board: Board, safety: SafetyTask) -> None:
        """Raise :class:`DataPortLostError` once the data port vanishes while the board is
        on (while the safety task holds it off, its own recovery restarts the chain)."""
        port = self._data_port(board)
        if port is None:
            await asyncio.Event().wait()
            return
        while _present(port) or safety.policy.off:  # noqa: ASYNC110 - see _present
            await asyncio.sleep(DATA_PORT_POLL)
        raise DataPortLostError(f"board {self.name!r}: data port {port} vanished")

    def _ports(self) -> list[str]:
        """Every port of the board (control and data)."""
        spec = self.entry.spec
        return [spec.port(role) for role in load_board(spec.board).port_roles]

    def _all_ports_present(self) -> bool:
        return all(_present(p) for p in self._ports())

    async def _ports_back(self) -> None:
        """Wait until every port of the board is there again (a pulled USB cable takes
        the control port with the data port)."""
        while not self._all_ports_present():  # noqa: ASYNC110 - see _present
            await asyncio.sleep(DATA_PORT_POLL)
        _log.info("board ports back: powering up", board=self.name)

    # -- the APIs' writes ---------------------------------------------------------------

    async def set_fan(self, percent: float | None) -> float | None:
        """Hold the fan at ``percent`` within the board's limits (None: the PID drives it)."""
        held = await self._up().set_fan(percent)
        self._settings["fan_percent"] = held
        self._store.save(self.name, self._settings)
        return held

    async def set_core_voltage(self, volts: float) -> float:
        """Set the core voltage within the board's limits (kept for later power-ups)."""
        volts = await self._up().set_core_voltage(volts)
        self._settings["core_voltage_v"] = volts
        self._store.save(self.name, self._settings)
        return volts

    def _up(self) -> SafetyTask:
        if self._safety is None:
            why = f" (last error: {self.last_error})" if self.last_error else ""
            raise BoardError(f"board {self.name!r} is not up{why}")
        return self._safety

    # -- the safety hooks -------------------------------------------------------------

    async def _stop_dispatch(self, reason: str) -> None:
        if SAFETY_HOLD not in self.runner.status.paused_by:
            _log.warning("board safe state: dispatch stopped", board=self.name, reason=reason)
        self.runner.hold(SAFETY_HOLD)  # no new work from here on
        if self._chain is not None:
            # The driver's teardown (about 0.9 s measured) runs while the power goes off:
            # nothing on the way to core voltage off waits for it. _resume and the session's
            # end await the cancelled task before anything starts again.
            self._chain.cancel()

    async def _resume(self, mhz: float | None) -> None:
        _log.info("board recovered: dispatch resumed", board=self.name, frequency_mhz=mhz)
        if mhz is not None:
            self.runner.request_frequency(mhz)
        await self._stop_chain()  # the driver cancelled at the safe state has finished
        self.runner.release(SAFETY_HOLD)
        self._start_chain()

    async def _set_frequency(self, mhz: float) -> None:
        self.runner.request_frequency(mhz)

    def _on_status(self, status: BoardStatus) -> None:
        self.status = status

    # -- the chain task ---------------------------------------------------------------

    def _start_chain(self) -> None:
        if self._chain is None or self._chain.done():
            self._chain = asyncio.create_task(self.runner.run(), name=f"chain-{self.name}")

    async def _stop_chain(self) -> None:
        """Stop the driver (its nonces so far are already handed to the dispatcher)."""
        task, self._chain = self._chain, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def board_chains(
    runners: Sequence[ChainRunner], stopping: Callable[[], bool], state_dir: Path
) -> dict[str, BoardChain]:
    """A :class:`BoardChain` for each runner whose table names a board; their API settings
    are kept in ``state_dir`` (read only when some table names a board)."""
    on_boards = [r for r in runners if r.device.board]
    if not on_boards:
        return {}
    store = BoardSettingsStore(state_dir)
    return {r.name: BoardChain(r.device, r, stopping, store) for r in on_boards}


def chain_task(runner: ChainRunner, boards: dict[str, BoardChain]) -> Coroutine[Any, Any, None]:
    """What the daemon's task group runs for a chain: its board, or the bare chain."""
    board = boards.get(runner.name)
    return board.run() if board is not None else runner.run()


def _span(allowed: Range | None) -> tuple[float, float] | None:
    return (allowed.low, allowed.high) if allowed is not None else None


def _value(reading: Reading[float]) -> float | None:
    return reading.value if reading.ok else None


def readout(status: BoardStatus) -> BoardReadout:
    """A board status as the APIs show it."""
    r, safety = status.readings, status.safety
    fan = _value(r.fan_duty_pct) if r is not None else None
    return BoardReadout(
        board=status.board,
        state=str(safety.state),
        reason=safety.reason,
        vr_temp_c=_value(r.vr_temp_c) if r is not None else None,
        fan_rpm=_value(r.fan_rpm) if r is not None else None,
        fan_percent=fan if fan is not None else safety.fan_percent,
        input_voltage_v=_value(r.vin_v) if r is not None else None,
        input_current_a=_value(r.iin_a) if r is not None else None,
        core_voltage_v=_value(r.vout_v) if r is not None else None,
        power_w=_value(r.power_w) if r is not None else None,
    )


def with_board(device: DeviceState, boards: dict[str, BoardChain]) -> DeviceState:
    """``device`` with its board's last readings (ASIC temperature, measured core voltage
    and, where the board measures it, power: ``power_source = "measured"``) and the
    limits its fan and core voltage may be set within."""
    chain = boards.get(device.name)
    if chain is None or chain.status is None:
        return device
    # the live board's class, not a registry scan on every snapshot
    limits = chain.board.limits if chain.board is not None else chain.limits
    board = replace(
        readout(chain.status),
        board=chain.entry.spec.board,  # the kind (the status names the board by its chain)
        fan_limits=_span(limits.fan_percent),
        core_voltage_limits=_span(limits.core_voltage_v),
    )
    readings = chain.status.readings
    temp = _value(readings.asic_temp_c) if readings is not None else None
    return replace(
        device,
        board=board,
        temperature_c=temp if temp is not None else device.temperature_c,
        voltage_v=board.core_voltage_v if board.core_voltage_v is not None else device.voltage_v,
        power_w=board.power_w if board.power_w is not None else device.power_w,
        power_source="measured" if board.power_w is not None else device.power_source,
    )
