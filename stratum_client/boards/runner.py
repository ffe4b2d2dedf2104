"""One board from open to off: the sequence the daemon runs for each board entry.

::

    async with BoardRunner(board, safety_config, hooks) as runner:
        # the board is open, powered up and watched by its safety task;
        # start a chip driver on each of runner.chains here
        ...
    # normal exit: power-down; exception (or cancellation): safe state; then the control
    # channel is closed. Either way VOUT is off and reset asserted.

A failed power-up is itself switched to the safe state before the error propagates, so
no path leaves a half-powered board behind.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import structlog

from .base import Board, ChainPort
from .clock import Clock
from .safety import SafetyConfig
from .safety_task import SafetyHooks, SafetyTask

__all__ = ["BoardRunner"]

_log = structlog.get_logger(__name__)


class BoardRunner:
    """Open, power up and watch one board; switch it off on every way out."""

    def __init__(
        self,
        board: Board,
        config: SafetyConfig | None = None,
        hooks: SafetyHooks | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.board = board
        self.safety = SafetyTask(board, config, hooks, clock=clock)

    @property
    def chains(self) -> tuple[ChainPort, ...]:
        """Where to start the chip drivers, once inside ``async with``."""
        return self.board.chains

    async def __aenter__(self) -> Self:
        await self.board.open()
        try:
            await self.board.power_up()
            await self.safety.__aenter__()
        except BaseException:
            _log.error("board power-up failed: safe state", board=self.board.label)
            try:
                await self.safety.shutdown(failed=True)
            finally:
                await self.board.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.safety.shutdown(failed=exc_type is not None)
        finally:
            await self.board.close()
