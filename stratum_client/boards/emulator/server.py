"""The asyncio shell of an emulated Bitaxe: the control port and the ASIC UART on ptys.

:class:`BoardEmulator` serves :class:`~.board.EmulatedBitaxe` on a hot-pluggable pty at
``control`` (what ``/dev/ttyACM0`` is on a real board) and a
:class:`~.chain.GatedChain` through the BM13xx emulator's server at ``data``
(``/dev/ttyACM1``). A short ticker keeps the thermal model current while the host is
quiet. :meth:`vanish_control` and :meth:`restore_control` pull and re-plug the control
port; the board keeps its state meanwhile, as the original bridge firmware does (it has
no lease that fails safe on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from types import TracebackType
from typing import Self

import structlog

from stratum_client.asic.ptys import HotplugPty
from stratum_client.boards.clock import Clock, MonotonicClock
from stratum_client.boards.codecs import bitaxe_raw as raw
from stratum_client_bm13xx.emulator.server import EmulatorServer

from .board import PROFILES, EmulatedBitaxe
from .chain import GatedChain
from .faults import BoardFaults
from .thermal import ThermalParams

__all__ = ["BoardEmulator"]

TICK_S = 0.05
"""Real seconds between thermal updates while the host is silent."""

_log = structlog.get_logger(__name__)


class BoardEmulator:
    """One emulated board of kind ``board`` (``bitaxe-gamma`` …), an async context manager."""

    def __init__(
        self,
        board: str,
        control: str | os.PathLike[str],
        data: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        thermal: ThermalParams | None = None,
        framing: raw.Framing = raw.Framing.V0,
        difficulty_scale: float = 1.0,
        hashrate: float | None = None,
    ) -> None:
        try:
            profile = PROFILES[board.lower()]
        except KeyError:
            known = ", ".join(sorted(PROFILES))
            raise ValueError(f"no emulated board named {board!r} (known: {known})") from None
        self.clock = clock or MonotonicClock()
        self.board = EmulatedBitaxe(profile, self.clock.now(), framing=framing, thermal=thermal)
        self.chain = GatedChain(
            profile.chip,
            1,
            powered=lambda: self.board.chain_powered,
            record=self._record_data,
            difficulty_scale=difficulty_scale,
        )
        self.board.on_power_loss = self.chain.reset
        self.board.chip_state = lambda: (self.chain.mhz, True)
        self.chain_server = EmulatorServer(self.chain, data, hashrate=hashrate)
        self._control = HotplugPty(control)
        self._ticker: asyncio.Task[None] | None = None
        self._log = _log.bind(board=profile.board, control=str(control))

    # -- public ----------------------------------------------------------------------------

    @property
    def control_path(self) -> str:
        return self._control.path

    @property
    def data_path(self) -> str:
        return self.chain_server.path

    @property
    def faults(self) -> BoardFaults:
        return self.board.faults

    def update(self) -> None:
        """Bring the thermal model and every register up to now."""
        self.board.update(self.clock.now())

    async def start(self) -> None:
        await self.chain_server.start()
        self.restore_control()
        self._ticker = asyncio.create_task(self._tick(), name=f"board ticker {self.control_path}")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.vanish_control()
        await self.chain_server.stop()

    def vanish_control(self) -> None:
        """Unplug the control port (the data port stays)."""
        if not self._control.plugged:
            return
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._control.pair.master_fd)
        self._control.unplug()
        self._log.info("control port unplugged")

    def restore_control(self) -> None:
        """Plug the control port back in (a new pty behind the same path)."""
        if self._control.plugged:
            return
        pair = self._control.plug()
        os.set_blocking(pair.master_fd, False)
        asyncio.get_running_loop().add_reader(pair.master_fd, self._on_readable)
        self._log.info("control port plugged", device=pair.slave_name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals -------------------------------------------------------------------------

    def _record_data(self, ok: bool, count: int) -> None:
        self.board.record("data", f"chip bytes {count}", ok, self.clock.now())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.update()

    def _on_readable(self) -> None:
        fd = self._control.pair.master_fd
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        reply = self.board.receive(data, self.clock.now())
        if reply:
            self._write(fd, reply)

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except (BlockingIOError, OSError):
            self._log.debug("control reply not taken", lost=len(view))
