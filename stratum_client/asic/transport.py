"""The async serial link between a driver and one chain of chips.

Ports are opened with :func:`serial.serial_for_url`, so a device path, a pty symlink,
``loop://`` and ``socket://host:port`` all work, and tests need no hardware. The asyncio
side comes from pyserial-asyncio-fast wherever it can carry the port:

* fd-backed ports (USB-UARTs, ptys): its ``SerialTransport`` watches the descriptor with
  ``loop.add_reader`` (subclassed only to keep write errors out of the loop's handler).
* ``socket://``: its ``create_serial_connection`` bypasses pyserial and opens a plain
  asyncio TCP connection (pyserial's URL options such as ``?logging=`` are ignored).
* everything else (``loop://``, ``rfc2217://``): ``SerialTransport`` cannot carry these. It
  calls ``fileno()`` from a loop callback, so the ``io.UnsupportedOperation`` lands in the
  loop's exception handler instead of the caller and the link silently never reads; and it
  forces ``write_timeout = 0``, which makes every ``loop://`` write raise
  ``SerialTimeoutException``. :class:`_PolledTransport` runs the blocking pyserial calls in
  the default executor instead.

All three feed one :class:`_LinkProtocol`, so :class:`SerialLink` behaves the same on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

import serial
import serial_asyncio_fast
import structlog
from serial.tools import list_ports as pyserial_ports

from stratum_client.asic.detect import PortInfo, miner_hint
from stratum_client.backoff import Backoff
from stratum_client.errors import DriverError, SerialLinkLostError

__all__ = ["INITIAL_BAUDRATE", "SerialLink", "list_ports"]

INITIAL_BAUDRATE = 115_200
"""BM13xx chips power up (and come back from reset) at this rate."""

_POLL_INTERVAL = 0.05
"""Read timeout of executor-polled ports: bounds how long closing them takes."""
_CLOSE_GRACE = 5.0
"""How long close() waits for the port to be released (a tty close may wait for TX)."""
_DRAIN_TIMEOUT = 2.0
"""tcdrain() limit before a baud switch; longer means the UART is wedged or gone."""

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class _SerialPort(Protocol):
    """The part of a pyserial port object this module uses (pyserial ships no types)."""

    baudrate: int
    timeout: float | None
    write_timeout: float | None

    @property
    def is_open(self) -> bool: ...
    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def flush(self) -> None: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class _Counters:
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_dropped: int = 0


class _LinkProtocol(asyncio.Protocol):
    """Buffers received bytes (bounded, oldest dropped) and tracks write flow and loss."""

    def __init__(self, counters: _Counters, max_buffer: int, log: Any) -> None:
        self._counters = counters
        self._max_buffer = max_buffer
        self._log = log
        self._buffer = bytearray()
        self._reader: asyncio.Future[None] | None = None
        """The one reader's wait, resolved straight from :meth:`data_received`."""
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()
        self._warned_overflow = False
        self.gone = False
        self.reported = False
        """Whether the loss was logged already (reads after a loss must not spam)."""
        self.cause: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self._counters.bytes_in += len(data)
        self._buffer += data
        excess = len(self._buffer) - self._max_buffer
        if excess > 0:
            # Stale chip replies are worthless; the frame parser resyncs on the preamble.
            del self._buffer[:excess]
            self._counters.bytes_dropped += excess
            if not self._warned_overflow:
                self._warned_overflow = True
                self._log.warning("serial input overflow, dropping oldest bytes", bytes=excess)
        self._wake_reader()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports the end

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.cause = exc
        self._wake_reader()
        self._writable.set()
        self._closed.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        return data

    def clear(self) -> None:
        self.take(len(self._buffer))

    def _wake_reader(self) -> None:
        if self._reader is not None:
            _resolve(self._reader)

    async def wait_readable(self, limit: float | None) -> None:
        """Return once bytes are buffered, the link is gone, or ``limit`` s have passed.

        A bare future and one timer handle, for the link's one reader: this runs for every
        read of a busy chain, where an Event under ``asyncio.timeout`` costs more per wake.
        """
        if self._buffer or self.gone:
            return
        loop = asyncio.get_running_loop()
        reader = self._reader = loop.create_future()
        timer = None if limit is None else loop.call_later(limit, _resolve, reader)
        try:
            await reader
        finally:
            self._reader = None
            if timer is not None:
                timer.cancel()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    async def wait_closed(self, grace: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._closed.wait()
        return self._closed.is_set()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _PolledTransport(asyncio.Transport):
    """Carries ports without a file descriptor through the default executor.

    One executor call at a time reads with a short timeout (``loop://`` wakes as soon as
    a byte is queued), and queued writes go out in order from a writer task.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, port: _SerialPort
    ) -> None:
        super().__init__(extra={"serial": port})
        self._loop = loop
        self._protocol = protocol
        self._port = port
        port.timeout = _POLL_INTERVAL
        port.write_timeout = None  # 0 would make loop:// refuse every write
        self._pending: deque[bytes] = deque()
        self._buffered = 0
        self._high, self._low = 64 * 1024, 16 * 1024
        self._paused = False
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._finisher: asyncio.Task[None] | None = None
        protocol.connection_made(self)
        self._reader = loop.create_task(self._read_loop(), name=f"serial-poll {port!r}")

    async def _read_loop(self) -> None:
        while not self._closing:
            try:
                data = await self._loop.run_in_executor(None, self._read_blocking)
            except OSError as exc:  # SerialException is an OSError
                self._shutdown(exc)
                return
            if data and not self._closing:
                self._protocol.data_received(data)

    def _read_blocking(self) -> bytes:
        return bytes(self._port.read(max(1, self._port.in_waiting)))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._pending.append(bytes(data))
        self._buffered += len(data)
        if self._buffered > self._high and not self._paused:
            self._paused = True
            self._protocol.pause_writing()
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            while self._pending:
                chunk = self._pending[0]
                await self._loop.run_in_executor(None, self._port.write, chunk)
                self._pending.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= self._low:
                    self._paused = False
                    self._protocol.resume_writing()
        except OSError as exc:
            self._shutdown(exc)
        finally:
            self._writer = None
        if self._closing:
            self._shutdown(None)

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        if self._writer is None:
            self._shutdown(None)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
        self._shutdown(None)

    def _shutdown(self, exc: Exception | None) -> None:
        self._closing = True
        if self._finisher is None:
            self._finisher = self._loop.create_task(self._finish(exc))

    async def _finish(self, exc: Exception | None) -> None:
        # Wait for in-flight executor calls so the port is never closed under them.
        await asyncio.wait([t for t in (self._reader, self._writer) if t is not None])
        with contextlib.suppress(OSError):
            await self._loop.run_in_executor(None, self._port.close)
        self._pending.clear()
        self._buffered = 0
        self._protocol.connection_lost(exc)


class _QuietSerialTransport(serial_asyncio_fast.SerialTransport):
    """``SerialTransport`` that treats a failed write as a lost link, not a loop-level error.

    Upstream reports write errors through ``loop.call_exception_handler``, which logs an
    ERROR with a traceback. For an unplugged USB-UART that is routine, and ``SerialLink``
    already reports it as ``SerialLinkLostError``. Overrides private ``_fatal_error`` and
    calls ``_abort`` (unchanged from 0.14 to 0.16); anything that is not an I/O error
    still goes to the loop's handler.
    """

    def _fatal_error(self, exc: BaseException, message: str = "serial write failed") -> None:
        if isinstance(exc, OSError):  # SerialException included
            self._abort(exc)
        else:
            super()._fatal_error(exc, message)

    def _read_ready(self) -> None:
        """Read with one ``os.read`` on the non-blocking descriptor the loop found readable.

        pyserial's ``read()`` waits in ``select()``, which raises for descriptors ≥ 1024:
        with about five descriptors per open port, a daemon driving ~200 chains would
        lose every chain opened after that. End of file or an I/O error (an unplugged
        device, a closed pty) closes the transport as pyserial's own error would.
        """
        fd = getattr(self._serial, "fd", None)
        if not isinstance(fd, int):
            super()._read_ready()
            return
        try:
            data = os.read(fd, self._max_read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc=serial.SerialException(f"read failed: {exc}"))
            return
        if not data:
            self._close(exc=serial.SerialException("device returned no data (disconnected?)"))
            return
        self._protocol.data_received(data)

    def _write_ready(self) -> None:
        """Drop the write callback once the buffer is empty.

        Upstream leaves it registered after flushing a partial write, so every later loop
        pass asserts on an empty buffer and the loop spins at full CPU whenever the
        kernel's send buffer once filled (a slow or stalled adapter).
        """
        if not self._write_buffer:
            self._remove_writer()
            return
        super()._write_ready()
        if not self._write_buffer:
            self._remove_writer()


def _is_url(port: str) -> bool:
    return "://" in port


def _scheme(port: str) -> str:
    return port.split("://", 1)[0].lower() if _is_url(port) else ""


def _has_fileno(port: _SerialPort) -> bool:
    try:
        cast(Any, port).fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


def _set_low_latency(port: _SerialPort, log: Any) -> None:
    """Ask a real USB-UART driver for ASYNC_LOW_LATENCY: chips answer in microseconds."""
    setter = getattr(port, "set_low_latency_mode", None)
    if setter is None:
        return
    try:
        setter(True)
    except (OSError, ValueError) as exc:  # ptys and many adapters refuse; harmless
        log.debug("low-latency mode unavailable", reason=str(exc))


def _open_serial(port: str, baudrate: int, log: Any) -> _SerialPort:
    """Open a non-socket port (blocking; runs in the executor)."""
    ser: _SerialPort = serial.serial_for_url(port, baudrate=baudrate, do_not_open=True)
    if not _is_url(port):
        cast(Any, ser).exclusive = True  # two daemons on one chain would garble both
    cast(Any, ser).open()
    _set_low_latency(ser, log)
    return ser


async def _open_transport(
    port: str, baudrate: int, protocol: _LinkProtocol, log: Any
) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    if _scheme(port) == "socket":
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop, lambda: protocol, port, baudrate=baudrate
        )
        return cast(asyncio.Transport, transport)
    ser = await loop.run_in_executor(None, _open_serial, port, baudrate, log)
    if not _has_fileno(ser):
        return _PolledTransport(loop, protocol, ser)
    return cast(asyncio.Transport, _QuietSerialTransport(loop, protocol, ser))


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
        self._counters = _Counters()
        self._transport: asyncio.Transport | None = None
        self._protocol: _LinkProtocol | None = None
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
        protocol = _LinkProtocol(self._counters, self._max_buffer, self._log)
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
            transport, protocol = self._require_open()
            transport.write(data)
            self._counters.bytes_out += len(data)
            await self._drain(transport, protocol)

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

    def _require_open(self) -> tuple[asyncio.Transport, _LinkProtocol]:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            raise SerialLinkLostError(f"{self.port}: link is not open")
        if protocol.gone or transport.is_closing():
            raise self._lost(protocol)
        return transport, protocol

    async def _drain(self, transport: asyncio.Transport, protocol: _LinkProtocol) -> None:
        await protocol.wait_writable()
        if protocol.gone or transport.is_closing():
            # A failed write aborts the transport; connection_lost then carries the cause.
            await protocol.wait_closed(_CLOSE_GRACE)
            raise self._lost(protocol)

    async def _tcdrain(self, port: _SerialPort) -> None:
        if not port.is_open:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_DRAIN_TIMEOUT):
                await loop.run_in_executor(None, port.flush)
        except (OSError, TimeoutError) as exc:
            raise SerialLinkLostError(f"{self.port}: cannot drain TX: {exc!r}") from exc

    def _apply_baudrate(self, port: _SerialPort, baudrate: int) -> None:
        try:
            port.baudrate = baudrate  # socket:// only stores it; there is no UART
        except OSError as exc:
            raise SerialLinkLostError(f"{self.port}: cannot set baud: {exc}") from exc
        except ValueError as exc:  # pyserial: rejected rate, or a failed custom-rate ioctl
            raise DriverError(f"{self.port}: cannot set {baudrate} baud: {exc}") from exc

    def _serial(self) -> _SerialPort | None:
        if self._transport is None:
            return None
        return cast(_SerialPort | None, self._transport.get_extra_info("serial"))

    def _lost(self, protocol: _LinkProtocol) -> SerialLinkLostError:
        cause = protocol.cause
        reason = str(cause) if cause is not None else "end of stream"
        if not protocol.reported:
            protocol.reported = True
            self._log.warning("serial link lost", reason=reason)
        error = SerialLinkLostError(f"{self.port}: device vanished ({reason})")
        error.__cause__ = cause
        return error


def list_ports() -> list[PortInfo]:
    """Every serial port pyserial can see, sorted by device path."""
    ports = [
        PortInfo(
            device=str(p.device),
            description=str(p.description or ""),
            vid=p.vid,
            pid=p.pid,
            manufacturer=p.manufacturer,
            product=p.product,
            serial_number=p.serial_number,
            hint=miner_hint(p.vid, p.pid, p.manufacturer, p.product),
        )
        for p in pyserial_ports.comports()
    ]
    return sorted(ports, key=lambda port: port.device)
