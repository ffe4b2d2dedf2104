"""The fake chip's frames: every frame starts with a two-byte magic naming its kind.

Host to chip: ``A5 3F`` enumerate; ``A5 54`` + 32-byte little-endian ticket target;
``A5 4A`` + job id + the 80-byte header (nonce field ignored: the chip scans nonces).
Chip to host: ``5A 49`` + chip count; ``5A 4E`` + job id + chip index + nonce (u32 LE).
"""

from __future__ import annotations

from construct import Bytes, BytesInteger, Const, Int8ub, Int32ul, Struct

ENUMERATE = b"\xa5?"
TICKET = Struct("magic" / Const(b"\xa5T"), "target" / BytesInteger(32, swapped=True))
JOB = Struct("magic" / Const(b"\xa5J"), "job_id" / Int8ub, "header" / Bytes(80))
IDENT = Struct("magic" / Const(b"\x5aI"), "chips" / Int8ub)
NONCE = Struct("magic" / Const(b"\x5aN"), "job_id" / Int8ub, "chip" / Int8ub, "nonce" / Int32ul)

HOST_FRAMES = {ENUMERATE: 2, b"\xa5T": TICKET.sizeof(), b"\xa5J": JOB.sizeof()}
CHIP_FRAMES = {b"\x5aI": IDENT.sizeof(), b"\x5aN": NONCE.sizeof()}


class Splitter:
    """Cut a byte stream into whole frames of the known kinds, skipping garbage."""

    def __init__(self, sizes: dict[bytes, int]) -> None:
        self._sizes = sizes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        buffer = self._buffer
        while len(buffer) >= 2:
            size = self._sizes.get(bytes(buffer[:2]))
            if size is None:
                del buffer[0]  # not a frame start: resynchronise on the next byte
                continue
            if len(buffer) < size:
                break
            frames.append(bytes(buffer[:size]))
            del buffer[:size]
        return frames
