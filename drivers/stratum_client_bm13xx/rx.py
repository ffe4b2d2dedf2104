"""Streaming frame parsers that re-synchronise instead of flushing.

Bytes from a serial port arrive in arbitrary chunks, possibly with line noise, torn frames
(after a reset or baud switch) or flipped bits. The reference firmware reads fixed-size
blocks and flushes the UART on any error, losing every good frame already buffered. These
parsers instead slide over the stream:

1. find the next preamble; bytes before it are garbage (counted, dropped);
2. wait until the whole candidate frame has arrived (on :meth:`~_ResyncParser.flush`, i.e.
   when the line went idle, a candidate that cannot complete is given up if another
   preamble follows it);
3. bad CRC: advance **one byte** past that preamble and rescan, so a good frame that
   starts inside the rejected candidate is still found;
4. good CRC: accept, unless a *later, overlapping* candidate is also CRC-valid (at most
   one of two overlapping frames is real). Then the candidate followed directly by
   another preamble wins; without that evidence the later one wins, because garbage
   before a real frame (a torn frame, which starts with a real preamble) is far more
   common than a real frame containing the preamble bytes. If the overlapping candidate
   has not fully arrived and nothing follows the first one yet, the decision waits for
   more bytes, or for :meth:`flush` when the line goes idle.

Between calls the buffer holds less than two maximal frames, so memory is bounded
whatever arrives.

**CRC-5 is weak**: a corrupted reply still passes with probability 1/32, and the parser
returns it as a valid frame. It cannot do better; the driver MUST hash-check every
nonce (and treat a register value as advisory) before trusting it. The project's
zero-invalid-share guarantee comes from that hash check, not from this layer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Generic, TypeVar

from .crc import crc5, crc16
from .frames import (
    FULL_HEADER_JOB_SIZE,
    JOB_HEADER,
    MIDSTATE_JOB_SIZE,
    RX_PREAMBLE,
    TX_PREAMBLE,
)

__all__ = ["HostFrameParser", "ReplyParser"]

T = TypeVar("T")

_HOST_LENGTHS = {
    0x40: (5,),  # set address
    0x41: (9,),  # write one
    0x51: (9,),  # write all
    0x42: (5,),  # read one
    0x52: (5,),  # read all
    0x53: (5,),  # chain inactive
    JOB_HEADER: (FULL_HEADER_JOB_SIZE + 4, MIDSTATE_JOB_SIZE + 4),
}
"""Length bytes each host header may carry; anything else cannot start a frame.

Checking the pair, not just the CRC, keeps a torn frame's stray length byte from making
the parser wait for up to 257 bytes before it can look at the real frames inside.
"""


class _Verdict(enum.Enum):
    ACCEPT = enum.auto()
    YIELD = enum.auto()
    WAIT = enum.auto()


class _ResyncParser(Generic[T]):
    """The scan-and-resync engine; subclasses say how long and how valid a frame is."""

    def __init__(self, preamble: bytes, emit: Callable[[bytes], T]) -> None:
        self._preamble = preamble
        self._emit = emit
        self._buf = bytearray()
        self.bytes_received = 0
        self.bytes_discarded = 0
        """Bytes dropped as garbage or as the first byte of a rejected candidate."""
        self.frames = 0
        self.frame_bytes = 0
        self.crc_errors = 0
        """Complete candidates (preamble found) whose CRC or length byte was bad."""
        self.overlaps = 0
        """CRC-valid candidates given up for an overlapping, more plausible one."""

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[T]:
        """Add received bytes; return every frame they complete, in stream order."""
        self._buf += data
        self.bytes_received += len(data)
        return self._scan(final=False)

    def flush(self) -> list[T]:
        """Decide what is held back (call when the line goes idle).

        Frames kept waiting only by an overlap ambiguity are accepted, and a torn frame
        that hides later preambles is skipped. Bytes of a frame that may still be
        arriving stay buffered.
        """
        return self._scan(final=True)

    def _size_at(self, buf: bytearray, start: int) -> int:
        """Frame size at ``start``: 0 if not yet known, negative if impossible."""
        raise NotImplementedError

    def _valid(self, buf: bytearray, start: int, size: int) -> bool:
        raise NotImplementedError

    def _scan(self, final: bool) -> list[T]:
        buf, out, i = self._buf, [], 0
        while True:
            j = buf.find(self._preamble, i)
            if j < 0:
                i = self._skip_to_end(buf, i)
                break
            self.bytes_discarded += j - i
            i = j
            size = self._size_at(buf, j)
            if size == 0 or j + size > len(buf):
                if final and buf.find(self._preamble, j + 1) >= 0:
                    self.bytes_discarded += 1  # idle line: this torn frame will not complete
                    i = j + 1
                    continue
                break
            verdict = self._judge(buf, j, size, final)
            if verdict is _Verdict.WAIT:
                break
            if verdict is _Verdict.ACCEPT:
                out.append(self._emit(bytes(buf[j : j + size])))
                self.frames += 1
                self.frame_bytes += size
                i = j + size
            else:
                self.bytes_discarded += 1
                i = j + 1
        del buf[:i]
        return out

    def _skip_to_end(self, buf: bytearray, i: int) -> int:
        """Drop everything but a trailing first preamble byte; return the new scan start."""
        end = len(buf)
        keep = 1 if end > i and buf[end - 1] == self._preamble[0] else 0
        self.bytes_discarded += end - keep - i
        return end - keep

    def _judge(self, buf: bytearray, start: int, size: int, final: bool) -> _Verdict:
        if size < 0 or not self._valid(buf, start, size):
            self.crc_errors += 1
            return _Verdict.YIELD
        verdict = self._resolve_overlaps(buf, start, start + size, final)
        if verdict is _Verdict.YIELD:
            self.overlaps += 1
        return verdict

    def _resolve_overlaps(self, buf: bytearray, start: int, end: int, final: bool) -> _Verdict:
        """Check preambles inside a CRC-valid candidate for a competing valid frame."""
        followed = self._followed(buf, end)
        k = buf.find(self._preamble, start + 1, end + 1)
        while k >= 0:
            size = self._size_at(buf, k)
            if size == 0 or (size > 0 and k + size > len(buf)):
                if not (final or followed):
                    return _Verdict.WAIT
            elif (
                size > 0
                and self._valid(buf, k, size)
                and (not followed or self._followed(buf, k + size))
            ):
                return _Verdict.YIELD
            k = buf.find(self._preamble, k + 1, end + 1)
        if not final and end == len(buf) and buf[end - 1] == self._preamble[0]:
            return _Verdict.WAIT  # a preamble may start on the last byte; see the next one
        return _Verdict.ACCEPT

    def _followed(self, buf: bytearray, pos: int) -> bool:
        return buf[pos : pos + 2] == self._preamble


class ReplyParser(_ResyncParser[T]):
    """Fixed-size chip replies (``AA 55 … crc5``), decoded by ``decode`` once CRC-valid.

    ``decode`` receives exactly one CRC-checked frame of ``reply_size`` bytes; the
    codecs' ``decode_frame`` is meant for it (``ChipCodec.parser()`` wires them up).
    """

    def __init__(self, reply_size: int, decode: Callable[[bytes], T]) -> None:
        if reply_size < 4:
            raise ValueError(f"reply size must be at least 4, got {reply_size}")
        super().__init__(RX_PREAMBLE, decode)
        self.reply_size = reply_size

    def _size_at(self, buf: bytearray, start: int) -> int:
        return self.reply_size

    def _valid(self, buf: bytearray, start: int, size: int) -> bool:
        return crc5(buf[start + 2 : start + size]) == 0


class HostFrameParser(_ResyncParser[bytes]):
    """Host → chip frames (commands and jobs), for chip emulators and bus sniffers.

    Yields whole raw frames; ``frame[2] == 0x21`` marks a job (see
    :func:`.frames.parse_command` and the codecs' ``decode_job``). A frame must have a
    known header/length pair; commands are checked with CRC-5 (top three bits of the
    CRC byte zero), jobs with CRC-16.
    """

    def __init__(self) -> None:
        super().__init__(TX_PREAMBLE, bytes)

    def _size_at(self, buf: bytearray, start: int) -> int:
        if start + 4 > len(buf):
            return 0
        header, length = buf[start + 2], buf[start + 3]
        return length + 2 if length in _HOST_LENGTHS.get(header, ()) else -1

    def _valid(self, buf: bytearray, start: int, size: int) -> bool:
        end = start + size
        if buf[start + 2] == JOB_HEADER:
            return crc16(buf[start + 2 : end - 2]) == int.from_bytes(buf[end - 2 : end], "big")
        return crc5(buf[start + 2 : end - 1]) == buf[end - 1]
