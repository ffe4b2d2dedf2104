"""The asyncio shell that puts an :class:`~.chain.EmulatedChain` on a pseudo-terminal.

The chain sits on the master side of a :class:`~stratum_client.asic.ptys.HotplugPty`; a driver opens
the stable symlink exactly as it would open ``/dev/ttyUSB0``. Hashing runs in short
budgets with a yield to the event loop between them, so many chains and the driver under
test can share one loop, and an optional ``hashrate`` cap lets hundreds of chains run
on a few cores.

Unplugging closes the master and removes the symlink (the driver's next read fails, as
after a USB unplug); plugging creates a fresh pty at the same path and powers the chain
up from scratch: 115 200 baud, no addresses, no jobs.

When the chain switches baud rate the pty's termios speed follows. A pty transfers at
the same speed whatever it says, but the setting is visible to anything that inspects
the port, as on a real UART.

With a ``bridge`` (e.g. the FT230X of a Compac F) the server instead models that part:
the termios speed is the host's, and the chips' replies reach the host only while the
bridge can carry the chips' rate at the rate the host asked for (:meth:`Bridge.carries
<stratum_client_bm13xx.fastbaud.Bridge.carries>`). A real FT-X asked for more than
3 Mbaud runs at 9600 under Linux, and chips sending faster than it can receive arrive
as framing errors; either way the driver hears nothing it can parse, so the emulated
chips simply stop answering. They still take the baud-switch frame: silicon cannot know
what listens. With ``silicon_time`` each job lasts only as long as real chips would take
to exhaust it (see :mod:`.pace`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypedDict, Unpack

import structlog

from stratum_client.asic.ptys import HotplugPty
from stratum_client_bm13xx.fastbaud import Bridge

from .chain import EmulatedChain
from .pace import SiliconPace
from .termios2 import set_terminal_speed, terminal_speed

__all__ = [
    "DEFAULT_STEP_HASHES",
    "EmulatorServer",
    "ServerOptions",
    "UnplugPlan",
    "run_emulators",
    "serve_chains",
    "set_terminal_speed",
    "terminal_speed",
]

DEFAULT_STEP_HASHES = 2048
"""Hashes between yields to the loop: a few milliseconds of CPU, the latency others see."""
IDLE_FLUSH_SECONDS = 0.005
"""Quiet time after which a frame held back by framing ambiguity is settled."""
_RATE_SLICE = 0.05
"""With a hashrate cap, hash in slices of about this many seconds' worth."""
_IDLE_POLL = 0.5
"""How often an idle chain re-checks for work it was not told about (fault changes)."""

_log = structlog.get_logger(__name__)


class _RateLimiter:
    """Token bucket in hashes: grants budgets so the long-run rate stays at ``rate``."""

    def __init__(self, rate: float, step: int, now: float) -> None:
        self.rate = rate
        self._want = max(1.0, min(float(step), rate * _RATE_SLICE))
        self._cap = max(self._want, rate * 4 * _RATE_SLICE)
        self._tokens = 0.0
        self._last = now

    def restart(self, now: float) -> None:
        """Forget idle time: a chain without work must not bank a burst."""
        self._tokens, self._last = 0.0, now

    def grant(self, now: float) -> tuple[int, float]:
        """``(budget, 0)`` when hashing may go ahead, else ``(0, seconds to wait)``."""
        self._tokens = min(self._tokens + (now - self._last) * self.rate, self._cap)
        self._last = now
        if self._tokens < self._want:
            return 0, (self._want - self._tokens) / self.rate
        return int(self._tokens), 0.0

    def spend(self, hashes: int) -> None:
        self._tokens -= hashes


class EmulatorServer:
    """Serves one chain on a hot-pluggable pty at ``link`` (an async context manager).

    ``hashrate`` caps the real hashes per second (None: as fast as the CPU allows);
    ``step_hashes`` is the work done between yields to the event loop.
    """

    def __init__(
        self,
        chain: EmulatedChain,
        link: str | os.PathLike[str],
        *,
        hashrate: float | None = None,
        step_hashes: int = DEFAULT_STEP_HASHES,
        bridge: Bridge | None = None,
        silicon_time: bool = False,
    ) -> None:
        if hashrate is not None and not hashrate > 0:
            raise ValueError(f"hashrate must be > 0 H/s, got {hashrate}")
        if step_hashes < 1:
            raise ValueError(f"step_hashes must be ≥ 1, got {step_hashes}")
        self.chain = chain
        self.hashrate = hashrate
        self.step_hashes = step_hashes
        self.bridge = bridge
        self.pace = SiliconPace() if silicon_time else None
        self._hotplug = HotplugPty(link)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hasher: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._work = asyncio.Event()
        self._speed = 0
        self._powered = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.bytes_lost = 0
        """Reply bytes the pty would not take (nobody reading): lost, as on a UART."""
        self.bytes_unheard = 0
        """Reply bytes the bridge could not carry at the chips' and host's rates."""
        self._log = _log.bind(link=str(link), model=chain.model.name)

    # -- public -------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The stable path a driver opens."""
        return self._hotplug.path

    @property
    def device(self) -> str | None:
        """The pty slave behind :attr:`path` right now (``/dev/pts/N``), None if unplugged."""
        return self._hotplug.pair.slave_name if self._hotplug.plugged else None

    @property
    def plugged(self) -> bool:
        return self._hotplug.plugged

    async def start(self) -> None:
        """Create the pty and start serving (the chain is at power-up)."""
        self._loop = asyncio.get_running_loop()
        await self.plug()

    async def stop(self) -> None:
        """Unplug for good and wait for the hashing task to end."""
        self.unplug()
        retired, self._retired = self._retired, set()
        if retired:
            await asyncio.wait(retired)

    async def plug(self) -> str:
        """Plug in: a new pty at :attr:`path`, the chain freshly powered up; returns the pty."""
        if self._hotplug.plugged:
            return self._hotplug.pair.slave_name
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._powered:
            self.chain.reset()
        self._powered = True
        pair = self._hotplug.plug()
        os.set_blocking(pair.master_fd, False)
        self._speed = 0
        self._sync_speed()
        self._loop.add_reader(pair.master_fd, self._on_readable)
        self._hasher = self._loop.create_task(self._hash_loop(), name=f"emulator {self.path}")
        self._log.info("plugged", device=pair.slave_name)
        return pair.slave_name

    def unplug(self) -> None:
        """Vanish: close the master, remove the symlink, stop hashing (a USB unplug)."""
        if not self._hotplug.plugged:
            return
        loop = self._loop
        if loop is not None:
            loop.remove_reader(self._hotplug.pair.master_fd)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._hasher is not None:
            self._hasher.cancel()
            self._retired.add(self._hasher)
            self._hasher.add_done_callback(self._retired.discard)
            self._hasher = None
        self._hotplug.unplug()
        self._log.info("unplugged")

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

    # -- host → chain -------------------------------------------------------------------

    def _on_readable(self) -> None:
        fd = self._hotplug.pair.master_fd
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._reader_failed(fd, exc)
            return
        if not data:
            self._reader_failed(fd, None)
            return
        self.bytes_in += len(data)
        self._send(self.chain.receive(data))
        if self.pace is not None and self._loop is not None:
            self.pace.note_input(self.chain, self._loop.time())
        self._after_input()

    def _reader_failed(self, fd: int, exc: OSError | None) -> None:
        """The master cannot be read (should not happen while we hold the slave): stop."""
        if self._loop is not None:
            self._loop.remove_reader(fd)
        self._log.warning("pty master unreadable", error=str(exc) if exc else "end of file")

    def _after_input(self) -> None:
        self._sync_speed()
        if self.chain.has_work:
            self._work.set()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.chain.pending_input and self._loop is not None:
            self._flush_handle = self._loop.call_later(IDLE_FLUSH_SECONDS, self._idle_flush)

    def _idle_flush(self) -> None:
        self._flush_handle = None
        if self._hotplug.plugged:
            self._send(self.chain.flush_input())
            self._after_input()

    def _sync_speed(self) -> None:
        """Mirror the chain's baud rate in the pty's termios settings."""
        baud = self.chain.baudrate
        if baud == self._speed or not self._hotplug.plugged or self.bridge is not None:
            return
        try:
            set_terminal_speed(self._hotplug.pair.slave_fd, baud)
        except (OSError, termios.error) as exc:
            self._log.debug("pty speed not set", baud=baud, error=str(exc))
        self._speed = baud
        self._log.debug("baud rate", baud=baud)

    # -- chain → host -------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not data or not self._hotplug.plugged:
            return
        if self.bridge is not None and not self._bridge_carries():
            self.bytes_unheard += len(data)
            return
        fd, view = self._hotplug.pair.master_fd, memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except BlockingIOError:
            pass  # nobody is reading: the rest is lost, as on a UART
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
        self.bytes_out += len(data) - len(view)
        self.bytes_lost += len(view)

    def _bridge_carries(self) -> bool:
        """Whether the bridge frames bytes between the chips' rate and the host's."""
        assert self.bridge is not None
        host = terminal_speed(self._hotplug.pair.slave_fd)
        return self.bridge.carries(self.chain.baudrate, host)

    # -- hashing ------------------------------------------------------------------------

    def _busy(self, now: float) -> bool:
        if not self.chain.has_work:
            return False
        return self.pace is None or self.pace.busy(self.chain, now)

    async def _hash_loop(self) -> None:
        loop = asyncio.get_running_loop()
        limiter = None
        if self.hashrate is not None:
            limiter = _RateLimiter(self.hashrate, self.step_hashes, loop.time())
        while True:
            if not self._busy(loop.time()):
                await self._wait_for_work()
                if limiter is not None:
                    limiter.restart(loop.time())
                continue
            budget, wait = self.step_hashes, 0.0
            if limiter is not None:
                granted, wait = limiter.grant(loop.time())
                budget = min(budget, granted)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            before = self.chain.hashes
            self._send(self.chain.hash_step(budget))
            if limiter is not None:
                limiter.spend(self.chain.hashes - before)
            await asyncio.sleep(0)

    async def _wait_for_work(self) -> None:
        self._work.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_IDLE_POLL):
                await self._work.wait()


class ServerOptions(TypedDict, total=False):
    """Keyword options of :class:`EmulatorServer` that the helpers pass on."""

    hashrate: float | None
    step_hashes: int
    bridge: Bridge | None
    silicon_time: bool


@contextlib.asynccontextmanager
async def serve_chains(
    chains: Sequence[EmulatedChain],
    links: Sequence[str | os.PathLike[str]],
    **options: Unpack[ServerOptions],
) -> AsyncIterator[list[EmulatorServer]]:
    """Serve each chain at its link (pairwise) for the duration of the ``async with``."""
    if len(chains) != len(links):
        raise ValueError(f"{len(chains)} chains but {len(links)} links")
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for chain, link in zip(chains, links, strict=True):
            server = EmulatorServer(chain, link, **options)
            servers.append(await stack.enter_async_context(server))
        yield servers


@dataclass(frozen=True, slots=True)
class UnplugPlan:
    """Unplug every chain ``after`` seconds of being plugged, for ``down`` seconds.

    Repeats ``cycles`` times (0: until stopped).
    """

    after: float
    down: float
    cycles: int = 1


ServerEvent = Callable[[str, EmulatorServer], None]
"""Called with ``"plugged"`` or ``"unplugged"`` and the server concerned."""


async def run_emulators(
    chains: Sequence[EmulatedChain],
    links: Sequence[str | os.PathLike[str]],
    *,
    stop: asyncio.Event | None = None,
    duration: float | None = None,
    unplug: UnplugPlan | None = None,
    on_event: ServerEvent | None = None,
    **options: Unpack[ServerOptions],
) -> list[EmulatorServer]:
    """Serve several chains until ``stop`` is set or ``duration`` seconds pass.

    Returns the (stopped) servers, whose chains keep their counters for a summary.
    """
    notify: ServerEvent = on_event or (lambda _event, _server: None)
    stopped = stop if stop is not None else asyncio.Event()
    async with serve_chains(chains, links, **options) as servers:
        for server in servers:
            notify("plugged", server)
        cycler = None
        if unplug is not None:
            cycler = asyncio.create_task(_unplug_cycles(servers, unplug, notify))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await stopped.wait()
        finally:
            if cycler is not None:
                cycler.cancel()
                await asyncio.gather(cycler, return_exceptions=True)
    return servers


async def _unplug_cycles(
    servers: Sequence[EmulatorServer], plan: UnplugPlan, notify: ServerEvent
) -> None:
    done = 0
    while plan.cycles == 0 or done < plan.cycles:
        await asyncio.sleep(plan.after)
        for server in servers:
            server.unplug()
            notify("unplugged", server)
        await asyncio.sleep(plan.down)
        for server in servers:
            await server.plug()
            notify("plugged", server)
        done += 1
