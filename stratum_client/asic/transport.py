"""The async serial link between a driver and one chain of chips.

:class:`SerialLink` opens a port (a device path, a pty symlink or a pyserial URL such as
``socket://host:port`` or ``loop://``) through :mod:`.serial_port`'s one transport and
gives a driver what it needs: read with a timeout, write and wait until the OS has the
bytes, switch baud rate mid-session, and one error for every kind of loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import structlog

from stratum_client.asic.serial_port import (
    Counters,
    LinkProtocol,
    SerialPort,
    SerialTransport,
    list_ports,
    open_port,
)
from stratum_client.backoff import Backoff
from stratum_client.errors import DriverError, SerialLinkLostError

__all__ = ["INITIAL_BAUDRATE", "SerialLink", "list_ports"]

INITIAL_BAUDRATE = 115_200
"""BM13xx chips power up (and come back from reset) at this rate."""

_CLOSE_GRACE = 5.0
"""How long close() waits for the port to be released (a tty close may wait for TX)."""
_DRAIN_TIMEOUT = 2.0
"""tcdrain() limit before a baud switch; longer means the UART is wedged or gone."""

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")


def _is_url(port: str) -> bool:
    return "://" in port


async def _open_transport(
    port: str, baudrate: int, protocol: LinkProtocol, log: Any
) -> SerialTransport:
    loop = asyncio.get_running_loop()
    ser = await loop.run_in_executor(None, open_port, port, baudrate, log)
    return SerialTransport(loop, protocol, ser)


class SerialLink:
    """One serial link to a chain of chips: open, read, write, switch baud, survive unplug.

    Every I/O failure, whether a USB unplug, a hung-up pty, a closed socket or a write
    error, is raised as :class:`~stratum_client.errors.SerialLinkLostError`; no
    ``OSError`` or ``SerialException`` escapes. Bytes that arrived before the loss are
    still returned by :meth:`read` first.

    Reconnect policy: the link never retries I/O on its own, because chips behind a
    vanished link have lost power or been reset and a half-sent job means nothing to them.
    The driver catches ``SerialLinkLostError``, calls :meth:`reopen`, and then treats the
    chain as freshly powered: the link is back at :attr:`initial_baudrate` with empty
    buffers and :attr:`generation` has gone up, so the driver re-enumerates, re-inits,
    ramps the frequency and raises the baud rate again.

    One task reads; any number may write (writes and baud switches are serialised).
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = INITIAL_BAUDRATE,
        reconnect: Backoff | None = None,
        max_buffer: int = 64 * 1024,
    ) -> None:
        self.port = port
        self.initial_baudrate = baudrate
        self.reconnect_backoff = reconnect or Backoff(0.1, 1.0, jitter="none")
        """Pauses between attempts while waiting for a vanished device to come back.

        Serial devices re-enumerate within a second or two and nobody else competes for
        them, so the backoff is short and has no jitter."""
        self.generation = 0
        """Bumped on every successful open; a change means the chips must be re-initialised."""
        self._max_buffer = max_buffer
        self._baudrate = baudrate
        self._counters = Counters()
        self._transport: asyncio.Transport | None = None
        self._protocol: LinkProtocol | None = None
        self._io_lock = asyncio.Lock()
        self._log = _log.bind(port=port)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SerialLink {self.port} {state} {self._baudrate} baud>"

    @property
    def is_open(self) -> bool:
        """True while the port is open and has not been lost."""
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            return False
        return not (protocol.gone or transport.is_closing())

    @property
    def baudrate(self) -> int:
        """The host UART's current rate."""
        return self._baudrate

    @property
    def bytes_in(self) -> int:
        """Bytes received over the life of this object (all generations)."""
        return self._counters.bytes_in

    @property
    def bytes_out(self) -> int:
        """Bytes accepted for sending over the life of this object."""
        return self._counters.bytes_out

    @property
    def bytes_dropped(self) -> int:
        """Received bytes discarded because nobody read them in time."""
        return self._counters.bytes_dropped

    async def open(self) -> None:
        """Open the port at :attr:`initial_baudrate` (one attempt; see :meth:`reopen`).

        A missing device raises ``SerialLinkLostError`` like a vanished one, so a caller
        can treat "not plugged in yet" and "unplugged" the same way.
        """
        if self.is_open:
            return
        await self.close()
        protocol = LinkProtocol(self._counters, self._max_buffer, self._log)
        try:
            transport = await _open_transport(self.port, self.initial_baudrate, protocol, self._log)
        except ValueError as exc:  # pyserial: unknown URL scheme or bad settings
            raise DriverError(f"{self.port}: cannot open: {exc}") from exc
        except OSError as exc:
            raise SerialLinkLostError(f"{self.port}: cannot open: {exc}") from exc
        transport.set_write_buffer_limits(high=0)  # pause_writing whenever TX is queued
        self._transport, self._protocol = transport, protocol
        self._baudrate = self.initial_baudrate
        self.generation += 1
        self._log.debug("serial link open", baudrate=self._baudrate, generation=self.generation)

    async def close(self) -> None:
        """Release the port. Writes were already drained, so nothing of value is discarded."""
        transport, protocol = self._transport, self._protocol
        self._transport = self._protocol = None
        if transport is None or protocol is None:
            return
        protocol.reported = True  # a deliberate close is not a loss worth a warning
        if not transport.is_closing():
            # abort, not close: a graceful close runs tcdrain, which hangs on a wedged UART
            transport.abort()
        if not await protocol.wait_closed(_CLOSE_GRACE):
            self._log.warning("serial port did not close in time")

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until it has been handed to the OS."""
        async with self._io_lock:
            self.write_now(data)
            transport, protocol = self._require_open()
            await self._drain(transport, protocol)

    @property
    def can_write_now(self) -> bool:
        """Whether :meth:`write_now` can hand bytes over at once: open, no write or baud
        switch in progress, nothing queued."""
        protocol = self._protocol
        return (
            self.is_open
            and protocol is not None
            and protocol.writable
            and not self._io_lock.locked()
        )

    def write_now(self, data: bytes) -> None:
        """Hand ``data`` to the transport in this loop step (check :attr:`can_write_now`
        first); a failure shows as the link's loss, as for a read. A writer queued on the
        lock may be passed by this; frames stay whole, so only their order can change."""
        transport, _ = self._require_open()
        transport.write(data)
        self._counters.bytes_out += len(data)

    # A read timeout is a normal outcome (b""), not an error, hence the parameter.
    async def read(self, max_bytes: int = 4096, timeout: float | None = 1.0) -> bytes:  # noqa: ASYNC109
        """Return up to ``max_bytes`` already received, waiting up to ``timeout`` for any.

        Returns ``b""`` on timeout; raises ``SerialLinkLostError`` once the link is gone
        and everything received before the loss has been read.
        """
        protocol = self._protocol
        if protocol is None:
            raise SerialLinkLostError(f"{self.port}: link is not open")
        await protocol.wait_readable(timeout)
        data = protocol.take(max_bytes)
        if data or not protocol.gone:
            return data
        raise self._lost(protocol)

    def listen(self, listener: Callable[[bytes], None] | None) -> None:
        """Hand received bytes straight to ``listener`` as they arrive (None: buffer them).

        What was buffered before is handed over first, so nothing is reordered. While a
        listener is set, :meth:`wait_data` is how the reading task learns of silence, of
        the loss and of what the listener raised.
        """
        protocol = self._protocol
        if protocol is None:
            raise SerialLinkLostError(f"{self.port}: link is not open")
        protocol.listener = None
        if listener is not None and (data := protocol.take(self._max_buffer)):
            listener(data)
        protocol.listener = listener

    async def wait_data(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` for bytes to reach the listener; False: silence.

        Raises what the listener raised, and ``SerialLinkLostError`` once the link is gone.
        """
        protocol = self._protocol
        if protocol is None:
            raise SerialLinkLostError(f"{self.port}: link is not open")
        before = self._counters.bytes_in
        await protocol.wait_readable(timeout)
        if (error := protocol.listener_error) is not None:
            protocol.listener_error = None
            raise error
        if protocol.gone:
            raise self._lost(protocol)
        return self._counters.bytes_in != before

    async def collect(
        self, parse: Callable[[bytes], list[_T]], *, first_timeout: float, quiet: float
    ) -> list[_T]:
        """Read and ``parse`` replies until ``quiet`` seconds pass without a new one.

        Waits up to ``first_timeout`` for the first; ``parse(b"")`` (after a silence, and
        once at the end) lets the parser decide frames it held back. For enumeration and
        detection: the caller has already sent the request.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first_timeout
        found: list[_T] = []
        while (remaining := deadline - loop.time()) > 0:
            items = parse(await self.read(4096, timeout=remaining))
            if items:
                found += items
                deadline = loop.time() + quiet
        return found + parse(b"")

    def reset_input(self) -> None:
        """Discard everything received but not yet read (ours and the OS's)."""
        if self._protocol is not None:
            self._protocol.clear()
        port = self._serial()
        if port is not None and port.is_open:
            with contextlib.suppress(OSError):  # a lost device: the next read reports it
                port.reset_input_buffer()

    async def set_baudrate(self, baudrate: int) -> None:
        """Switch the host UART mid-session, after the chips were told to switch.

        Pending TX is drained first (it was meant for the old rate), then the rate
        changes and input is flushed, since bytes straddling the switch are garbage.
        """
        async with self._io_lock:
            transport, protocol = self._require_open()
            await self._drain(transport, protocol)
            port = self._serial()
            if port is not None:
                await self._tcdrain(port)
                self._apply_baudrate(port, baudrate)
            self._baudrate = baudrate
            self.reset_input()
            self._log.debug("baud rate switched", baudrate=baudrate)

    async def wait_for_device(self, timeout: float) -> None:  # noqa: ASYNC109 - retry budget
        """Wait until the device path exists again (URLs are assumed to exist)."""

        async def present() -> bool:
            return self._device_present()

        await self._retry(present, timeout, "appear")

    async def reopen(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - retry budget
        """Close, then keep trying to open the same path until it works or ``timeout``.

        The port comes back at :attr:`initial_baudrate` (chips reset to it); see the class
        docstring for what the driver must redo.
        """
        await self.close()
        await self._retry(self._try_open, timeout, "come back")
        self._log.info("serial link reopened", generation=self.generation)

    async def _retry(
        self, attempt: Callable[[], Awaitable[bool]], budget: float, what: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        backoff = self.reconnect_backoff
        backoff.reset()
        last: BaseException | None = None
        while True:
            try:
                if await attempt():
                    return
            except SerialLinkLostError as exc:
                last = exc
            remaining = deadline - loop.time()
            if remaining <= 0:
                msg = f"{self.port}: device did not {what} within {budget:g} s"
                raise SerialLinkLostError(msg) from last
            await asyncio.sleep(min(backoff.next(), remaining))

    def _device_present(self) -> bool:
        # A stat of a /dev node or symlink; URLs can only be tried by connecting.
        return _is_url(self.port) or os.path.exists(self.port)

    async def _try_open(self) -> bool:
        if not self._device_present():
            return False
        await self.open()
        return True

    def _require_open(self) -> tuple[asyncio.Transport, LinkProtocol]:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            raise SerialLinkLostError(f"{self.port}: link is not open")
        if protocol.gone or transport.is_closing():
            raise self._lost(protocol)
        return transport, protocol

    async def _drain(self, transport: asyncio.Transport, protocol: LinkProtocol) -> None:
        await protocol.wait_writable()
        if protocol.gone or transport.is_closing():
            # A failed write aborts the transport; connection_lost then carries the cause.
            await protocol.wait_closed(_CLOSE_GRACE)
            raise self._lost(protocol)

    async def _tcdrain(self, port: SerialPort) -> None:
        if not port.is_open:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_DRAIN_TIMEOUT):
                await loop.run_in_executor(None, port.flush)
        except (OSError, TimeoutError) as exc:
            raise SerialLinkLostError(f"{self.port}: cannot drain TX: {exc!r}") from exc

    def _apply_baudrate(self, port: SerialPort, baudrate: int) -> None:
        try:
            port.baudrate = baudrate  # socket:// only stores it; there is no UART
        except OSError as exc:
            raise SerialLinkLostError(f"{self.port}: cannot set baud: {exc}") from exc
        except ValueError as exc:  # pyserial: rejected rate, or a failed custom-rate ioctl
            raise DriverError(f"{self.port}: cannot set {baudrate} baud: {exc}") from exc

    def _serial(self) -> SerialPort | None:
        if self._transport is None:
            return None
        return cast(SerialPort | None, self._transport.get_extra_info("serial"))

    def _lost(self, protocol: LinkProtocol) -> SerialLinkLostError:
        cause = protocol.cause
        reason = str(cause) if cause is not None else "end of stream"
        if not protocol.reported:
            protocol.reported = True
            self._log.warning("serial link lost", reason=reason)
        error = SerialLinkLostError(f"{self.port}: device vanished ({reason})")
        error.__cause__ = cause
        return error
