"""The host side of the bitaxe-raw control port: one request at a time, replies matched.

:class:`BitaxeRawClient` implements :class:`~stratum_client.boards.bus.I2cBus` and
:class:`~stratum_client.boards.bus.GpioLines` over a
:class:`~stratum_client.asic.transport.SerialLink`, so the peripheral code never sees the
bridge. Each frame goes out in one write (the firmware drops a frame whose USB packets
arrive more than 4 ms apart); each reply must carry the request's ID within ``timeout``.
A late reply to an earlier request is skipped, what arrived between requests is dropped,
and a lost port becomes :class:`~stratum_client.boards.errors.ControlLinkError`.

A V0 reply does not say where it ends: its length is read as the data size its own
request expects. So the client remembers what each request that was cancelled or timed
out still expects, and a late reply to it (in flight when the next request went out: a
safety poll cut short by a shutdown) is read with that size and skipped, not taken for
garbage in the reply that follows it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import structlog

from stratum_client.asic.transport import SerialLink
from stratum_client.boards.codecs import bitaxe_raw as raw
from stratum_client.boards.errors import (
    ControlLinkError,
    ControlReplyError,
    ControlTimeoutError,
    I2cNackError,
)
from stratum_client.errors import StratumClientError

__all__ = ["DEFAULT_TIMEOUT", "BitaxeRawClient"]

DEFAULT_TIMEOUT = 1.0
"""Seconds to wait for a reply (what the bridge's own host tools wait)."""
_ROUND_TRIPS_KEPT = 4096

_log = structlog.get_logger(__name__)


class BitaxeRawClient:
    """Requests over one control port; safe to share between tasks (one at a time)."""

    def __init__(
        self,
        link: SerialLink,
        *,
        framing: raw.Framing = raw.Framing.V0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.link = link
        self.framing = framing
        self.timeout = timeout
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._buffer = bytearray()
        self._late: dict[int, int] = {}
        """Data size still expected by each request id whose reply never came in time."""
        self.round_trips: deque[float] = deque(maxlen=_ROUND_TRIPS_KEPT)
        """Seconds per successful request, newest last (for benchmarks and health)."""
        self._log = _log.bind(port=link.port)

    def _take_id(self) -> int:
        request_id = self._next_id
        self._next_id = (self._next_id + 1) % (raw.MAX_REQUEST_ID + 1)
        self._late.pop(request_id, None)  # that id's old request is long gone
        return request_id

    async def request(self, build: tuple[raw.Request, int]) -> bytes:
        """Send one request and return its reply data (raising the bridge's error)."""
        request, expected = build
        async with self._lock:
            started = time.perf_counter()
            reply = await self._exchange(request, expected)
            if isinstance(reply, raw.ErrorReply):
                raise _reply_error(request, reply)
            self.round_trips.append(time.perf_counter() - started)
            return reply.data

    async def _drain(self) -> None:
        """Drop what arrived since the last reply (late replies, noise) without flushing the
        OS queue: a flush between the loop seeing the pty readable and reading it makes the
        read come back empty, which the link must take for a hang-up."""
        self._buffer.clear()
        while await self.link.read(4096, timeout=0):
            pass

    async def _exchange(self, request: raw.Request, expected: int) -> raw.Reply | raw.ErrorReply:
        try:
            await self._drain()
            await self.link.write(raw.encode_request(request))
            async with asyncio.timeout(self.timeout):
                return await self._awaited(request, expected)
        except TimeoutError:
            late = raw.pending_error(bytes(self._buffer), self.framing)
            if late is not None and late.id == request.id:
                return late
            raise ControlTimeoutError(
                f"{self.link.port}: no reply to {request.describe()} within {self.timeout:g} s"
            ) from None
        except ControlLinkError:
            raise
        except StratumClientError as exc:  # the serial link is lost or cannot open
            raise ControlLinkError(f"{self.link.port}: control port lost: {exc}") from exc

    async def _awaited(self, request: raw.Request, expected: int) -> raw.Reply | raw.ErrorReply:
        try:
            return await self._reply_for(request, expected)
        except BaseException:  # cancelled or timed out: its reply may still arrive
            self._late[request.id] = expected
            raise

    async def _reply_for(self, request: raw.Request, expected: int) -> raw.Reply | raw.ErrorReply:
        while True:
            split = self._split(self._size_of_first(request, expected))
            if split is None:
                self._buffer += await self.link.read(4096, timeout=None)
                continue
            reply, used = split
            del self._buffer[:used]
            if reply.id == request.id:
                return reply
            self._late.pop(reply.id, None)
            self._log.debug("skipped reply", id=reply.id, wanted=request.id)

    def _size_of_first(self, request: raw.Request, expected: int) -> int:
        """The data size to read the first buffered reply with: a late reply's own."""
        if self.framing is raw.Framing.V0 and len(self._buffer) >= 3:
            first = self._buffer[2]
            if first != request.id and first in self._late:
                return self._late[first]
        return expected

    def _split(self, expected: int) -> tuple[raw.Reply | raw.ErrorReply, int] | None:
        try:
            return raw.split_reply(bytes(self._buffer), self.framing, expected)
        except raw.FramingError as exc:
            shown = bytes(self._buffer[:16]).hex(" ")
            self._buffer.clear()
            raise ControlLinkError(
                f"{self.link.port}: garbage on the control port ({shown}): {exc}"
            ) from exc

    # -- I2cBus -------------------------------------------------------------------------

    async def write(self, address: int, data: bytes) -> None:
        await self.request(raw.i2c_write(self._take_id(), address, data))

    async def read(self, address: int, count: int) -> bytes:
        return await self._sized(raw.i2c_read(self._take_id(), address, count), count)

    async def write_read(self, address: int, data: bytes, count: int) -> bytes:
        return await self._sized(raw.i2c_write_read(self._take_id(), address, data, count), count)

    async def _sized(self, build: tuple[raw.Request, int], count: int) -> bytes:
        data = await self.request(build)
        if len(data) != count:
            raise ControlLinkError(
                f"{self.link.port}: {build[0].describe()} returned {len(data)} bytes, not {count}"
            )
        return data

    async def set_i2c_frequency(self, hz: int) -> None:
        await self.request(raw.i2c_set_frequency(self._take_id(), hz))

    # -- GpioLines ----------------------------------------------------------------------

    async def set_line(self, line: int, level: bool) -> None:
        echoed = await self.request(raw.gpio_set(self._take_id(), line, level))
        if echoed != bytes([int(level)]):
            raise ControlLinkError(
                f"{self.link.port}: GPIO {line} set to {int(level)} echoed {echoed.hex()}"
            )

    async def get_line(self, line: int) -> bool:
        data = await self.request(raw.gpio_get(self._take_id(), line))
        if len(data) != 1 or data[0] > 1:
            raise ControlLinkError(f"{self.link.port}: GPIO {line} read returned {data.hex()}")
        return bool(data[0])

    async def adc(self, channel: raw.AdcCommand) -> int:
        data = await self.request(raw.adc_read(self._take_id(), channel))
        return int.from_bytes(data, "little")


def _reply_error(request: raw.Request, reply: raw.ErrorReply) -> ControlReplyError:
    if request.page == raw.Page.I2C and reply.code == raw.ErrorCode.ERROR:
        return I2cNackError(reply.code, reply.message, request.describe())
    return ControlReplyError(reply.code, reply.message, request.describe())
