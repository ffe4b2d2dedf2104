"""Byte layouts of the BM13xx replies (chip → host), split from :mod:`.frames`.

Declared with ``construct`` for the cold paths and packed/unpacked with precompiled
:mod:`struct` formats on the per-nonce hot path (see :mod:`.frames` for why both). The
reply CRC covers the top three bits of the last byte, so no byte-aligned checksum field
can express it: the receive path checks it on the raw bytes (:func:`.crc.crc5_ok`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Const,
    Flag,
    Int8ub,
    Int16ub,
    Int32ub,
    Int32ul,
    Struct,
)

from .crc import crc5_reply

__all__ = [
    "NONCE_FLAG",
    "NONCE_REPLY",
    "NONCE_REPLY_SHORT",
    "REGISTER_REPLY",
    "REGISTER_REPLY_SHORT",
    "RX_PREAMBLE",
    "NonceFields",
    "RegisterFields",
    "pack_nonce_reply",
    "pack_register_reply",
    "unpack_nonce_reply",
    "unpack_register_reply",
]

RX_PREAMBLE = b"\xaa\x55"

NONCE_FLAG = 0x80
"""Bit 7 of a reply's last byte: set on nonce replies, clear on register replies."""

_REPLY_TAIL = BitStruct(
    "is_nonce" / Flag,
    "reserved" / BitsInteger(2),
    "crc" / BitsInteger(5),
)

NONCE_REPLY = Struct(
    "preamble" / Const(RX_PREAMBLE),
    "nonce" / Int32ul,
    "midstate_num" / Int8ub,
    "id" / Int8ub,
    "version" / Int16ub,
    "tail" / _REPLY_TAIL,
)
"""BM1366/68/70 nonce reply (11 bytes)."""

REGISTER_REPLY = Struct(
    "preamble" / Const(RX_PREAMBLE),
    "value" / Int32ub,
    "chip_address" / Int8ub,
    "register" / Int8ub,
    "unused" / Bytes(2),
    "tail" / _REPLY_TAIL,
)
"""BM1366/68/70 register reply (11 bytes)."""

NONCE_REPLY_SHORT = Struct(
    "preamble" / Const(RX_PREAMBLE),
    "nonce" / Int32ul,
    "midstate_num" / Int8ub,
    "id" / Int8ub,
    "tail" / _REPLY_TAIL,
)
"""BM1397 nonce reply (9 bytes)."""

REGISTER_REPLY_SHORT = Struct(
    "preamble" / Const(RX_PREAMBLE),
    "value" / Int32ub,
    "chip_address" / Int8ub,
    "register" / Int8ub,
    "tail" / _REPLY_TAIL,
)
"""BM1397 register reply (9 bytes)."""


@dataclass(frozen=True, slots=True)
class NonceFields:
    """Raw fields of a nonce reply (``version`` is 0 on 9-byte replies)."""

    nonce: int
    midstate_num: int
    id: int
    version: int


@dataclass(frozen=True, slots=True)
class RegisterFields:
    """Raw fields of a register reply."""

    value: int
    chip_address: int
    register: int


_NONCE_LONG = struct.Struct("<2xIBB")
_VERSION16 = struct.Struct(">8xH")
_REGISTER = struct.Struct(">2xIBB")


def pack_nonce_reply(
    nonce: int, midstate_num: int, id_byte: int, version: int = 0, size: int = 11
) -> bytes:
    """A CRC-valid nonce reply; ``version`` (the 16 rolled bits) exists only when ``size`` is 11."""
    body = nonce.to_bytes(4, "little") + bytes((midstate_num, id_byte))
    if size == 11:
        body += version.to_bytes(2, "big")
    elif size != 9 or version:
        raise ValueError(f"a {size}-byte nonce reply cannot carry version bits {version:#x}")
    return RX_PREAMBLE + body + bytes((NONCE_FLAG | crc5_reply(body, NONCE_FLAG),))


def pack_register_reply(value: int, chip_address: int, register: int, size: int = 11) -> bytes:
    """A CRC-valid register reply (the two spare bytes of 11-byte replies are zero)."""
    body = value.to_bytes(4, "big") + bytes((chip_address, register))
    if size == 11:
        body += b"\x00\x00"
    elif size != 9:
        raise ValueError(f"reply size must be 9 or 11, got {size}")
    return RX_PREAMBLE + body + bytes((crc5_reply(body, 0),))


def unpack_nonce_reply(frame: bytes) -> NonceFields:
    """Fields of a nonce reply whose length and CRC were already checked."""
    nonce, midstate_num, id_byte = _NONCE_LONG.unpack_from(frame)
    version = _VERSION16.unpack_from(frame)[0] if len(frame) == 11 else 0
    return NonceFields(nonce, midstate_num, id_byte, version)


def unpack_register_reply(frame: bytes) -> RegisterFields:
    """Fields of a register reply whose length and CRC were already checked."""
    return RegisterFields(*_REGISTER.unpack_from(frame))
