"""pyserial ports under asyncio: one transport that owns its reads and writes.

Ports are opened with :func:`serial.serial_for_url`, so a device path, a pty symlink,
``socket://host:port`` and ``loop://`` all work, and tests need no hardware.
:class:`SerialTransport` carries every one of them:

* a port with a file descriptor (USB-UARTs, ptys; ``socket://`` is opened as a plain TCP
  socket, since pyserial's would discard what the peer sent first): the loop watches the
  descriptor (``add_reader``; ``add_writer`` only while a partial write is pending, so an
  idle loop never spins) and the transport reads and writes it with one ``os.read`` /
  ``os.write`` each time. No ``select()``, which fails for descriptors ≥ 1024.
* a port without one (``loop://``, ``rfc2217://``): its blocking calls run in the default
  executor, one read (with a short timeout) and the queued writes, in order.

Every I/O error or end of stream closes the transport and reaches the protocol's
``connection_lost`` (never the loop's exception handler: for an unplugged adapter it is
routine). :class:`LinkProtocol` buffers what arrives for :class:`~.transport.SerialLink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import serial
from serial.tools import list_ports as pyserial_ports

from stratum_client.asic.detect import PortInfo, miner_hint

__all__ = ["Counters", "LinkProtocol", "SerialPort", "SerialTransport", "list_ports", "open_port"]

_POLL_INTERVAL = 0.05
"""Read timeout of executor-polled ports: bounds how long closing them takes."""
_HIGH_WATER = 64 * 1024
_CONNECT_TIMEOUT = 5.0
"""Seconds a socket:// connect may take (pyserial's own default)."""


class SerialPort(Protocol):
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
class Counters:
    """Byte counts over the life of one link (all its generations)."""

    bytes_in: int = 0
    bytes_out: int = 0
    bytes_dropped: int = 0


class LinkProtocol(asyncio.Protocol):
    """Buffers received bytes (bounded, oldest dropped) and tracks write flow and loss.

    With a :attr:`listener` set, received bytes go straight to it from the transport's
    read callback instead: a chip's reply is handled in the loop step that read it, not
    one step later when the reading task resumes.
    """

    def __init__(self, counters: Counters, max_buffer: int, log: Any) -> None:
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
        self.listener: Callable[[bytes], None] | None = None
        self.listener_error: Exception | None = None
        """What the listener raised; it is detached, and the reader hears of it."""

    def data_received(self, data: bytes) -> None:
        self._counters.bytes_in += len(data)
        listener = self.listener
        if listener is not None:
            try:
                listener(data)
            except Exception as exc:  # the reader re-raises it in its own task
                self.listener, self.listener_error = None, exc
            self._wake_reader()
            return
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

    @property
    def writable(self) -> bool:
        """False while the transport holds unsent bytes (writing is paused)."""
        return self._writable.is_set()

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


def _fileno(port: SerialPort | socket.socket) -> int | None:
    try:
        fd = cast(Any, port).fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return fd if isinstance(fd, int) else None


class SerialTransport(asyncio.Transport):
    """An asyncio transport over one open pyserial port (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.Protocol,
        port: SerialPort | socket.socket,
    ) -> None:
        # A socket:// link is a plain TCP socket: there is no UART to reconfigure or drain.
        serial_port = None if isinstance(port, socket.socket) else port
        super().__init__(extra={"serial": serial_port, "socket": port if serial_port else None})
        self._loop = loop
        self._protocol = protocol
        self._port = port
        self._fd = _fileno(port)
        self._buffer = bytearray()
        self._high, self._low = _HIGH_WATER, _HIGH_WATER // 4
        self._paused = self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._finisher: asyncio.Task[None] | None = None
        protocol.connection_made(self)
        self._socket = self._fd is not None and stat.S_ISSOCK(os.fstat(self._fd).st_mode)
        if self._fd is not None:
            os.set_blocking(self._fd, False)
            loop.add_reader(self._fd, self._read_ready)
        else:
            port = cast(SerialPort, port)
            port.timeout = _POLL_INTERVAL
            port.write_timeout = None  # 0 would make loop:// refuse every write
            self._poller = loop.create_task(self._poll(), name=f"serial-poll {port!r}")

    # -- reading ------------------------------------------------------------------------

    def _read_ready(self) -> None:
        try:
            data = os.read(cast(int, self._fd), 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # an unplugged device, a closed pty
            self._fail(serial.SerialException(f"read failed: {exc}"))
            return
        if not data:  # a socket just ended; a tty at end of file has lost its device
            lost = None if self._socket else serial.SerialException("device returned no data")
            self._fail(lost)
            return
        self._protocol.data_received(data)

    async def _poll(self) -> None:
        while not self._closing:
            try:
                data = await self._loop.run_in_executor(None, self._read_blocking)
            except OSError as exc:  # SerialException is an OSError
                self._fail(exc)
                return
            if data and not self._closing:
                self._protocol.data_received(data)

    def _read_blocking(self) -> bytes:
        port = cast(SerialPort, self._port)  # only ports without a descriptor are polled
        return bytes(port.read(max(1, port.in_waiting)))

    # -- writing ------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        if self._fd is not None and not self._buffer:
            try:
                sent = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fail(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
        self._buffer += data
        if self._fd is None and self._writer is None:
            self._writer = self._loop.create_task(self._write_queued())
        if len(self._buffer) > self._high and not self._paused:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            sent = os.write(cast(int, self._fd), self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        del self._buffer[:sent]
        if not self._buffer:
            self._loop.remove_writer(cast(int, self._fd))  # else the loop spins on it
        self._written()

    async def _write_queued(self) -> None:
        try:
            while self._buffer and not self._finisher:
                chunk = bytes(self._buffer)
                await self._loop.run_in_executor(None, cast(SerialPort, self._port).write, chunk)
                del self._buffer[: len(chunk)]
                self._written()
        except OSError as exc:
            self._fail(exc)
        finally:
            self._writer = None

    def _written(self) -> None:
        if self._paused and len(self._buffer) <= self._low:
            self._paused = False
            self._protocol.resume_writing()
        if self._closing and not self._buffer:
            self._fail(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = _HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    # -- closing ------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; release the port once queued writes have gone out."""
        self._closing = True
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
        if not self._buffer:
            self._fail(None)

    def abort(self) -> None:
        """Drop queued writes and release the port now."""
        self._buffer.clear()
        self._fail(None)

    def _fail(self, exc: Exception | None) -> None:
        """Stop all I/O and close the port; the protocol hears ``exc`` (None: clean end)."""
        self._closing = True
        if self._finisher is None:
            if self._fd is not None:
                self._loop.remove_reader(self._fd)
                self._loop.remove_writer(self._fd)
            self._finisher = self._loop.create_task(self._finish(exc))

    async def _finish(self, exc: Exception | None) -> None:
        # Wait for in-flight executor calls so the port is never closed under them.
        busy = [t for t in (self._poller, self._writer) if t is not None and not t.done()]
        if busy:
            await asyncio.wait(busy)
        with contextlib.suppress(OSError):
            await self._loop.run_in_executor(None, self._port.close)
        self._buffer.clear()
        self._protocol.connection_lost(exc)


def _is_url(port: str) -> bool:
    return "://" in port


def _set_low_latency(port: SerialPort, log: Any) -> None:
    """Ask a real USB-UART driver for ASYNC_LOW_LATENCY: chips answer in microseconds."""
    setter = getattr(port, "set_low_latency_mode", None)
    if setter is None:
        return
    try:
        setter(True)
    except (OSError, ValueError) as exc:  # ptys and many adapters refuse; harmless
        log.debug("low-latency mode unavailable", reason=str(exc))


def open_port(port: str, baudrate: int, log: Any) -> SerialPort | socket.socket:
    """Open ``port`` (blocking; runs in the executor).

    ``socket://host:port`` becomes a plain connected socket: pyserial's socket port would
    discard whatever the peer sent before its open() returned (it resets the input).
    """
    if port.lower().startswith("socket://"):
        return _connect(port)
    ser: SerialPort = serial.serial_for_url(port, baudrate=baudrate, do_not_open=True)
    if not _is_url(port):
        cast(Any, ser).exclusive = True  # two daemons on one chain would garble both
    cast(Any, ser).open()
    _set_low_latency(ser, log)
    return ser


def _connect(url: str) -> socket.socket:
    """A TCP connection to a ``socket://host:port`` URL (query options are ignored)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.port is None:  # .port raises ValueError out of range
        raise ValueError(f"expected socket://host:port, not {url!r}")
    sock = socket.create_connection((parts.hostname, parts.port), timeout=_CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a job frame must not wait
    return sock


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
