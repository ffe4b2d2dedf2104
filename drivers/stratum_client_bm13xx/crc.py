"""The two checksums of the BM13xx serial protocol.

CRC-16 (job frames) is CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no
final XOR. :func:`binascii.crc_hqx` computes exactly that CCITT register when given
init 0xFFFF (``crc_hqx(b"123456789", 0xFFFF) == 0x29B1``), in C, so it is used directly.

CRC-5 (commands and every reply) is poly x⁵+x²+1, init 0x1F, MSB-first, no final XOR. No
standard-library routine computes a 5-bit CRC and ``crcmod`` is not a dependency, so it
is hand-written here with a 256-entry byte table: the receive path runs it once per
frame, and a table step per byte is several times cheaper than eight bit steps.

Where the CRC-5 sits differs by direction:

* host → chip commands: the CRC covers whole bytes (header..data) and fills the last
  byte (its top three bits are zero and *not* covered);
* chip → host replies: the chip covers every bit before the CRC, including the top three
  bits of the last byte (bit 7 = nonce-reply flag), and puts the CRC in the low five
  bits. Hence the residue over bytes 2..end of a good reply is 0.
"""

from __future__ import annotations

import binascii

__all__ = [
    "crc5",
    "crc5_ok",
    "crc5_reply",
    "crc16",
]

_CRC5_INIT = 0x1F
_POLY5_ALIGNED = 0x05 << 3
"""The CRC-5 polynomial left-aligned in a byte register, so whole bytes XOR in at once."""


def _shift_bits(reg: int, nbits: int) -> int:
    """Clock ``nbits`` bits out of an 8-bit left-aligned CRC-5 register."""
    for _ in range(nbits):
        reg = ((reg << 1) ^ _POLY5_ALIGNED) & 0xFF if reg & 0x80 else (reg << 1) & 0xFF
    return reg


_TABLE5 = bytes(_shift_bits(i, 8) for i in range(256))


def _reg5(data: bytes | bytearray | memoryview) -> int:
    reg = _CRC5_INIT << 3
    table = _TABLE5
    for byte in data:
        reg = table[reg ^ byte]
    return reg


def crc5(data: bytes | bytearray | memoryview) -> int:
    """CRC-5 of whole bytes.

    Over a command's header..data it is the CRC the host appends; over a reply's bytes
    2..end (CRC byte included) it is the residue, 0 when the reply is intact.
    """
    return _reg5(data) >> 3


def crc5_ok(frame: bytes | bytearray | memoryview) -> bool:
    """Whether a whole reply frame (preamble included) passes its CRC-5."""
    return _reg5(memoryview(frame)[2:]) == 0


def crc5_reply(body: bytes | bytearray | memoryview, flags: int) -> int:
    """The CRC-5 a chip puts in the low five bits of a reply's last byte.

    ``body`` is bytes 2..end-1 of the reply; ``flags`` is the last byte's top three bits
    (``0x80`` for a nonce reply, ``0x00`` for a register reply), which the CRC covers.
    """
    if flags & 0x1F:
        raise ValueError(f"flags must only use bits 5..7, got {flags:#04x}")
    return _shift_bits(_reg5(body) ^ flags, 3) >> 3


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of a job frame's header, length and data bytes."""
    return binascii.crc_hqx(data, 0xFFFF)
