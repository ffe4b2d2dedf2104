"""Byte layouts of every BM13xx serial frame: declared with ``construct``, packed with ``struct``.

The ``construct`` Structs below are the authoritative declaration of each packet format
and are what the cold paths use (parsing host frames in an emulator, diagnostics).
Building a job with them costs ~20 µs and parsing a reply ~15 µs, a large share of the
≤ 88 µs budget per job (10 % of its wire time at 1 Mbaud) and far too much for a reply
parsed per nonce, so the hot paths (job packing, reply packing and unpacking) use
precompiled :mod:`struct` formats instead. The tests prove the two produce identical
bytes and fields.

Field semantics (byte orders of header fields, id-byte rules) belong to :mod:`.codec`;
this module only moves already-ordered fields into and out of frames.

The reply CRC is *not* part of the reply Structs: it covers the top three bits of the
last byte, which no byte-aligned checksum field can express, so the receive path checks
it on the raw bytes (:func:`.crc.crc5_ok`) before anything is parsed.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from construct import (
    Array,
    Bytes,
    Checksum,
    Const,
    ConstructError,
    Int8ub,
    Int16ub,
    Int32ul,
    Rebuild,
    Struct,
    len_,
    this,
)

from stratum_client.errors import FrameError

from .crc import crc5, crc16
from .reply_frames import (
    NONCE_FLAG,
    NONCE_REPLY,
    NONCE_REPLY_SHORT,
    REGISTER_REPLY,
    REGISTER_REPLY_SHORT,
    RX_PREAMBLE,
    NonceFields,
    RegisterFields,
    pack_nonce_reply,
    pack_register_reply,
    unpack_nonce_reply,
    unpack_register_reply,
)

__all__ = [
    "COMMAND_FRAME",
    "FULL_HEADER_JOB",
    "FULL_HEADER_JOB_SIZE",
    "JOB_FRAME",
    "JOB_HEADER",
    "MIDSTATE_JOB",
    "MIDSTATE_JOB_SIZE",
    "MIDSTATE_SLOTS",
    "NONCE_FLAG",
    "NONCE_REPLY",
    "NONCE_REPLY_SHORT",
    "REGISTER_REPLY",
    "REGISTER_REPLY_SHORT",
    "RX_PREAMBLE",
    "TX_PREAMBLE",
    "CommandFrame",
    "CommandKind",
    "FullHeaderJobData",
    "MidstateJobData",
    "NonceFields",
    "RegisterFields",
    "chain_inactive",
    "command_frame",
    "job_frame",
    "pack_full_header_job",
    "pack_midstate_job",
    "pack_nonce_reply",
    "pack_register_reply",
    "parse_command",
    "parse_full_header_job",
    "parse_job_frame",
    "parse_midstate_job",
    "read_register",
    "set_address",
    "unpack_nonce_reply",
    "unpack_register_reply",
    "write_register",
]

TX_PREAMBLE = b"\x55\xaa"

TYPE_JOB = 0x20
TYPE_CMD = 0x40
GROUP_ALL = 0x10
JOB_HEADER = TYPE_JOB | 0x01
"""Header byte of every job frame (``0x21``)."""

FULL_HEADER_JOB_SIZE = 82
MIDSTATE_JOB_SIZE = 146
MIDSTATE_SLOTS = 4


class CommandKind(enum.IntEnum):
    """Low nibble of a command header."""

    SET_ADDRESS = 0
    WRITE = 1
    READ = 2
    INACTIVE = 3


# --------------------------------------------------------------------------------------
# construct declarations
# --------------------------------------------------------------------------------------


def _cmd_crc_input(ctx: Any) -> bytes:
    return bytes((ctx.header, ctx.length)) + bytes(ctx.data)


COMMAND_FRAME = Struct(
    "preamble" / Const(TX_PREAMBLE),
    "header" / Int8ub,
    "length" / Rebuild(Int8ub, len_(this.data) + 3),
    "data" / Bytes(this.length - 3),
    "crc" / Checksum(Int8ub, crc5, _cmd_crc_input),
)
"""Host → chip command: ``55 AA hdr len data crc5`` with ``len = len(data) + 3``."""

JOB_FRAME = Struct(
    "preamble" / Const(TX_PREAMBLE),
    "header" / Const(JOB_HEADER, Int8ub),
    "length" / Rebuild(Int8ub, len_(this.data) + 4),
    "data" / Bytes(this.length - 4),
    "crc" / Checksum(Int16ub, crc16, _cmd_crc_input),
)
"""Host → chip job: ``55 AA 21 len data crc16`` (big-endian CRC), ``len = len(data) + 4``."""

FULL_HEADER_JOB = Struct(
    "job_id" / Int8ub,
    "num_midstates" / Int8ub,
    "starting_nonce" / Int32ul,
    "nbits" / Int32ul,
    "ntime" / Int32ul,
    "merkle_root" / Bytes(32),
    "prev_hash" / Bytes(32),
    "version" / Int32ul,
)
"""Job data of BM1366/68/70 (82 bytes); hash fields already in wire order."""

MIDSTATE_JOB = Struct(
    "job_id" / Int8ub,
    "num_midstates" / Int8ub,
    "starting_nonce" / Int32ul,
    "nbits" / Int32ul,
    "ntime" / Int32ul,
    "merkle_tail" / Bytes(4),
    "midstates" / Array(MIDSTATE_SLOTS, Bytes(32)),
)
"""Job data of the BM1397 (146 bytes); all four midstate slots are always sent."""


# --------------------------------------------------------------------------------------
# typed views of parsed frames
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """A parsed host → chip command."""

    header: int
    data: bytes

    @property
    def kind(self) -> CommandKind:
        return CommandKind(self.header & 0x0F)

    @property
    def broadcast(self) -> bool:
        """Addressed to every chip (group bit) rather than to ``chip_address``."""
        return bool(self.header & GROUP_ALL)

    @property
    def chip_address(self) -> int:
        return self.data[0]

    @property
    def register(self) -> int:
        """Register for reads and writes (0 for set-address and inactive)."""
        return self.data[1]

    @property
    def value(self) -> bytes:
        """The four value bytes of a write (empty otherwise)."""
        return self.data[2:6]


@dataclass(frozen=True, slots=True)
class FullHeaderJobData:
    """BM1366/68/70 job fields exactly as on the wire."""

    job_id: int
    num_midstates: int
    starting_nonce: int
    nbits: int
    ntime: int
    merkle_root: bytes
    """Raw merkle root's eight words in reverse order."""
    prev_hash: bytes
    """Stratum prevhash bytes fully reversed."""
    version: int


@dataclass(frozen=True, slots=True)
class MidstateJobData:
    """BM1397 job fields exactly as on the wire."""

    job_id: int
    num_midstates: int
    starting_nonce: int
    nbits: int
    ntime: int
    merkle_tail: bytes
    midstates: tuple[bytes, ...]
    """All four slots, each as state words H7..H0 big-endian."""


# --------------------------------------------------------------------------------------
# command builders (host → chip)
# --------------------------------------------------------------------------------------


def command_frame(header: int, data: bytes) -> bytes:
    """``55 AA hdr len data crc5``; byte-identical to ``COMMAND_FRAME.build``."""
    body = bytes((header, len(data) + 3)) + data
    return TX_PREAMBLE + body + bytes((crc5(body),))


def set_address(address: int) -> bytes:
    """Give the first still-unaddressed chip ``address`` (``55 AA 40 05 addr 00``)."""
    return command_frame(TYPE_CMD | CommandKind.SET_ADDRESS, bytes((address, 0)))


def chain_inactive() -> bytes:
    """Make every chip forget its address so enumeration can assign new ones."""
    return command_frame(TYPE_CMD | GROUP_ALL | CommandKind.INACTIVE, b"\x00\x00")


def read_register(register: int, address: int | None = None) -> bytes:
    """Read ``register`` from one chip, or from all chips when ``address`` is ``None``."""
    header = TYPE_CMD | CommandKind.READ | (GROUP_ALL if address is None else 0)
    return command_frame(header, bytes((address or 0, register)))


def write_register(register: int, value: bytes | int, address: int | None = None) -> bytes:
    """Write a 4-byte value (an int is taken big-endian) to one chip or to all chips."""
    raw = value.to_bytes(4, "big") if isinstance(value, int) else bytes(value)
    if len(raw) != 4:
        raise ValueError(f"register value must be 4 bytes, got {len(raw)}")
    header = TYPE_CMD | CommandKind.WRITE | (GROUP_ALL if address is None else 0)
    return command_frame(header, bytes((address or 0, register)) + raw)


def parse_command(frame: bytes) -> CommandFrame:
    """Parse and CRC-check a command frame (cold path: emulators, diagnostics)."""
    fields = _parse(COMMAND_FRAME, frame, "command")
    return CommandFrame(header=int(fields.header), data=bytes(fields.data))


# --------------------------------------------------------------------------------------
# job frames
# --------------------------------------------------------------------------------------

_FULL_HEAD = struct.Struct("<BBIII")
_MID_HEAD = struct.Struct("<BBIII4s")
_VERSION = struct.Struct("<I")
_EMPTY_MIDSTATE = bytes(32)


def job_frame(data: bytes) -> bytes:
    """``55 AA 21 len data crc16``; byte-identical to ``JOB_FRAME.build``."""
    body = bytes((JOB_HEADER, len(data) + 4)) + data
    return TX_PREAMBLE + body + crc16(body).to_bytes(2, "big")


def pack_full_header_job(
    *,
    job_id: int,
    nbits: int,
    ntime: int,
    merkle_root: bytes,
    prev_hash: bytes,
    version: int,
    starting_nonce: int = 0,
    num_midstates: int = 1,
) -> bytes:
    """The 82 data bytes of a BM1366/68/70 job; hash fields must already be in wire order."""
    if len(merkle_root) != 32 or len(prev_hash) != 32:
        raise ValueError("merkle_root and prev_hash must be 32 bytes")
    head = _FULL_HEAD.pack(job_id, num_midstates, starting_nonce, nbits, ntime)
    return head + merkle_root + prev_hash + _VERSION.pack(version)


def pack_midstate_job(
    *,
    job_id: int,
    num_midstates: int,
    nbits: int,
    ntime: int,
    merkle_tail: bytes,
    midstates: Sequence[bytes],
    starting_nonce: int = 0,
) -> bytes:
    """The 146 data bytes of a BM1397 job; missing midstate slots are sent as zeros."""
    if len(merkle_tail) != 4 or len(midstates) > MIDSTATE_SLOTS:
        raise ValueError("merkle_tail must be 4 bytes and at most 4 midstates given")
    if any(len(m) != 32 for m in midstates):
        raise ValueError("each midstate must be 32 bytes")
    head = _MID_HEAD.pack(job_id, num_midstates, starting_nonce, nbits, ntime, merkle_tail)
    padding = _EMPTY_MIDSTATE * (MIDSTATE_SLOTS - len(midstates))
    return head + b"".join(midstates) + padding


def parse_job_frame(frame: bytes) -> bytes:
    """CRC-check a job frame and return its data bytes."""
    return bytes(_parse(JOB_FRAME, frame, "job").data)


def parse_full_header_job(data: bytes) -> FullHeaderJobData:
    """Fields of an 82-byte BM1366/68/70 job."""
    f = _parse(FULL_HEADER_JOB, data, "full-header job", size=FULL_HEADER_JOB_SIZE)
    return FullHeaderJobData(
        job_id=int(f.job_id),
        num_midstates=int(f.num_midstates),
        starting_nonce=int(f.starting_nonce),
        nbits=int(f.nbits),
        ntime=int(f.ntime),
        merkle_root=bytes(f.merkle_root),
        prev_hash=bytes(f.prev_hash),
        version=int(f.version),
    )


def parse_midstate_job(data: bytes) -> MidstateJobData:
    """Fields of a 146-byte BM1397 job."""
    f = _parse(MIDSTATE_JOB, data, "midstate job", size=MIDSTATE_JOB_SIZE)
    return MidstateJobData(
        job_id=int(f.job_id),
        num_midstates=int(f.num_midstates),
        starting_nonce=int(f.starting_nonce),
        nbits=int(f.nbits),
        ntime=int(f.ntime),
        merkle_tail=bytes(f.merkle_tail),
        midstates=tuple(bytes(m) for m in f.midstates),
    )


# --------------------------------------------------------------------------------------


def _parse(fmt: Any, data: bytes, what: str, size: int | None = None) -> Any:
    """Run a construct parse of exactly one frame, turning its errors into FrameError.

    ``size`` defaults to the frame's own length byte plus the two preamble bytes.
    """
    if size is None:
        size = data[3] + 2 if len(data) >= 4 else 4
    if len(data) != size:
        raise FrameError(f"{what}: expected {size} bytes, got {len(data)}")
    try:
        return fmt.parse(data)
    except ConstructError as exc:
        raise FrameError(f"{what}: {exc}") from exc
