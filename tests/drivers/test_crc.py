"""CRC-5 and CRC-16 against bit-by-bit references and frames captured from real chips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client_bm13xx.crc import crc5, crc5_ok, crc5_reply, crc16


def _bits(data: bytes) -> list[int]:
    return [(byte >> i) & 1 for byte in data for i in range(7, -1, -1)]


def ref_crc5(bits: list[int]) -> int:
    """x⁵+x²+1, init 0x1F, MSB-first, one bit at a time."""
    crc = 0x1F
    for bit in bits:
        feedback = ((crc >> 4) & 1) ^ bit
        crc = ((crc << 1) & 0x1F) ^ (0x05 if feedback else 0)
    return crc


def ref_crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, one bit at a time."""
    crc = 0xFFFF
    for bit in _bits(data):
        feedback = ((crc >> 15) & 1) ^ bit
        crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if feedback else 0)
    return crc


# Host → chip commands: documented vectors plus BM1397 init traffic sniffed from a miner.
VERIFIED_COMMANDS = [
    "55 AA 52 05 00 00 0A",
    "55 AA 53 05 00 00 03",
    "55 AA 40 05 00 00 1C",
    "55 AA 51 09 00 A4 90 00 FF FF 1C",
    "55 AA 51 09 00 28 11 30 02 00 03",
    "55 AA 51 09 00 14 00 00 00 FF 08",
    "55 AA 51 09 00 80 00 00 00 00 1C",
    "55 AA 51 09 00 84 00 00 00 00 11",
    "55 AA 51 09 00 20 00 00 00 01 02",
    "55 AA 51 09 00 3C 80 00 80 74 10",
    "55 AA 51 09 00 68 C0 70 01 11 00",
    "55 AA 51 09 00 28 06 00 00 0F 18",
    "55 AA 51 09 00 18 00 00 7A 31 15",
    "55 AA 51 09 00 70 0F 0F 0F 00 19",
    "55 AA 51 09 00 08 40 A0 02 25 16",
]

# Chip → host replies logged from real BM1366/BM1368/BM1370/BM1397 chips.
REAL_REPLIES = [
    "AA 55 13 66 00 00 00 00 00 00 05",
    "AA 55 13 68 00 00 00 00 00 00 0F",
    "AA 55 13 97 18 00 00 00 06",
    "AA 55 52 00 30 25 00 91 00 B1 93",
    "AA 55 7A 01 76 B4 00 8B 0B DB 9A",
    "AA 55 66 00 CB 32 02 F9 23 39 91",
    "AA 55 4C 03 52 75 0C D2 05 A2 9C",
    "AA 55 00 03 EA 0F 02 20 9C",
]


MIDSTATE_1397_WIRE = bytes.fromhex(
    "91DFEA528A9F73683D0D495DD6DD7415E1CA21CB411759E3E05D7D5FF285314D"
)[::-1].hex()
"""bm1397.py's little-endian-word midstate, fully reversed as the wire carries it."""


def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


@given(st.binary(max_size=200))
def test_crc16_matches_bitwise_reference(data: bytes) -> None:
    assert crc16(data) == ref_crc16(data)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        # bm1397.py verifier frame: 4 midstate slots, only slot 0 filled
        ("219604040000000001DD0517D88B6564C604A846" + MIDSTATE_1397_WIRE + "00" * 96, 0x6B1D),
        # job frame captured from a BM1368 board
        (
            "2156780100000000BE1A0317D299B2669AC531A9FCE7C99B248BEE40B7E3ED4BFA8F3CDDF6CC522F"
            "B45D45F0609E29FA00000000000000007FCF0100AC7C5DD63C53AB4B3CFBBCA3D3F316D66A487C6E"
            "00000020",
            0xC4E1,
        ),
    ],
)
def test_crc16_on_job_frames(frame: str, expected: int) -> None:
    assert crc16(bytes.fromhex(frame)) == expected


@pytest.mark.parametrize("frame", VERIFIED_COMMANDS)
def test_crc5_of_verified_commands(frame: str) -> None:
    raw = bytes.fromhex(frame)
    assert crc5(raw[2:-1]) == raw[-1]


@pytest.mark.parametrize("frame", REAL_REPLIES)
def test_real_replies_have_zero_residue(frame: str) -> None:
    raw = bytes.fromhex(frame)
    assert crc5(raw[2:]) == 0
    assert crc5_ok(raw)


@pytest.mark.parametrize("frame", REAL_REPLIES)
def test_crc5_reply_reproduces_the_chips_crc(frame: str) -> None:
    raw = bytes.fromhex(frame)
    flags = raw[-1] & 0xE0
    assert flags | crc5_reply(raw[2:-1], flags) == raw[-1]


def test_command_crc_does_not_cover_the_spare_bits() -> None:
    """Unlike replies, a command's residue over its CRC byte is not zero."""
    raw = bytes.fromhex(VERIFIED_COMMANDS[0])
    assert crc5(raw[2:]) != 0


@given(st.binary(max_size=64))
def test_crc5_table_matches_bitwise_reference(data: bytes) -> None:
    assert crc5(data) == ref_crc5(_bits(data))


@given(st.binary(min_size=1, max_size=16), st.sampled_from([0x00, 0x80, 0x20, 0xE0]))
def test_crc5_reply_matches_bitwise_reference(body: bytes, flags: int) -> None:
    expected = ref_crc5(_bits(body) + _bits(bytes((flags,)))[:3])
    assert crc5_reply(body, flags) == expected
    assert crc5(body + bytes((flags | expected,))) == 0


@given(st.binary(min_size=7, max_size=9), st.data())
def test_every_single_bit_error_is_detected(body: bytes, data: st.DataObject) -> None:
    frame = bytearray(body + bytes((0x80 | crc5_reply(body, 0x80),)))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 0x80 >> (bit % 8)
    assert crc5(bytes(frame)) != 0


def test_crc5_reply_rejects_flag_bits_in_the_crc_field() -> None:
    with pytest.raises(ValueError, match=r"bits 5\.\.7"):
        crc5_reply(b"\x00", 0x81)
