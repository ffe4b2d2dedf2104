"""Frame layouts: the fast struct paths are byte-identical to the construct declarations."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import FrameError
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.crc import crc5_reply
from stratum_client_bm13xx.frames import (
    COMMAND_FRAME,
    FULL_HEADER_JOB,
    JOB_FRAME,
    MIDSTATE_JOB,
    NONCE_REPLY,
    NONCE_REPLY_SHORT,
    REGISTER_REPLY,
    REGISTER_REPLY_SHORT,
    CommandKind,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
hash32 = st.binary(min_size=32, max_size=32)

REAL_BM1368_JOB = bytes.fromhex(
    "55AA2156780100000000BE1A0317D299B2669AC531A9FCE7C99B248BEE40B7E3ED4BFA8F3CDDF6CC522F"
    "B45D45F0609E29FA00000000000000007FCF0100AC7C5DD63C53AB4B3CFBBCA3D3F316D66A487C6E"
    "00000020C4E1"
)
"""A job frame captured from a BM1368 board."""

SNIFFED_BM1397_JOB = bytes.fromhex(
    "55AA2196040400000000A38906172FA80A646F1CC5E899CE15A2DEDF61497790"
    "69841C8A0CE0A030E40ACBA6A5FB3319305DE246EF181D6363EBE7BAD98D4BCA"
    "FE9C4F45F645FA71A01E8CB82D68DC6CB84E25398C50FA7E2EC6C80861B9A589"
    "9071C47556E4788535226551EA68EBF896B0CA4077D40CAF1BD4473785BB396A"
    "22C39C2356E7CEB6574C1FA3A99AD3C1A017791FBC388C24"
)
"""A BM1397 job with four midstates, sniffed from a miner's UART."""


# -- commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (frames.read_register(0x00), "55 AA 52 05 00 00 0A"),
        (frames.chain_inactive(), "55 AA 53 05 00 00 03"),
        (frames.set_address(0), "55 AA 40 05 00 00 1C"),
        (
            frames.write_register(0xA4, bytes.fromhex("9000FFFF")),
            "55 AA 51 09 00 A4 90 00 FF FF 1C",
        ),
        (frames.write_register(0x28, 0x11300200), "55 AA 51 09 00 28 11 30 02 00 03"),
        (
            frames.write_register(0x14, bytes.fromhex("000000FF")),
            "55 AA 51 09 00 14 00 00 00 FF 08",
        ),
        (
            frames.write_register(0xA8, bytes.fromhex("000701F0"), 0),
            "55 AA 41 09 00 A8 00 07 01 F0 15",
        ),
        (
            frames.write_register(0x2C, bytes.fromhex("007C0003"), 0),
            "55 AA 41 09 00 2C 00 7C 00 03 03",
        ),
    ],
)
def test_command_builders_reproduce_verified_frames(frame: bytes, expected: str) -> None:
    assert frame == bytes.fromhex(expected)


@given(header=u8, data=st.binary(min_size=2, max_size=8))
def test_command_frame_matches_construct(header: int, data: bytes) -> None:
    built = COMMAND_FRAME.build({"header": header, "data": data})
    assert frames.command_frame(header, data) == built
    parsed = frames.parse_command(built)
    assert (parsed.header, parsed.data) == (header, data)


def test_parse_command_exposes_fields() -> None:
    cmd = frames.parse_command(frames.write_register(0x3C, bytes.fromhex("800082AA"), 0x40))
    assert cmd.kind is CommandKind.WRITE
    assert not cmd.broadcast
    assert (cmd.chip_address, cmd.register, cmd.value) == (0x40, 0x3C, bytes.fromhex("800082AA"))
    read_all = frames.parse_command(frames.read_register(0x8C))
    assert read_all.kind is CommandKind.READ
    assert read_all.broadcast
    assert read_all.value == b""
    assert frames.parse_command(frames.chain_inactive()).kind is CommandKind.INACTIVE
    assert frames.parse_command(frames.set_address(0x80)).chip_address == 0x80


@pytest.mark.parametrize(
    "frame",
    [
        "55 AA 52 05 00 00 0B",  # bad CRC
        "55 AA 52 05 00 00 2A",  # CRC with a spare bit set
        "AA 55 52 05 00 00 0A",  # reply preamble
        "55 AA 52 05 00 00",  # short
        "55 AA 52 05 00 00 0A 00",  # trailing byte
        "55 AA",
    ],
)
def test_parse_command_rejects_broken_frames(frame: str) -> None:
    with pytest.raises(FrameError):
        frames.parse_command(bytes.fromhex(frame))


def test_write_register_needs_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        frames.write_register(0x14, b"\x00\x00")


# -- jobs -------------------------------------------------------------------------------


@given(data=st.binary(min_size=1, max_size=200))
def test_job_frame_matches_construct(data: bytes) -> None:
    built = JOB_FRAME.build({"data": data})
    assert frames.job_frame(data) == built
    assert frames.parse_job_frame(built) == data


FULL_FIELDS = st.fixed_dictionaries(
    {
        "job_id": u8,
        "num_midstates": u8,
        "starting_nonce": u32,
        "nbits": u32,
        "ntime": u32,
        "merkle_root": hash32,
        "prev_hash": hash32,
        "version": u32,
    }
)
MIDSTATE_FIELDS = st.fixed_dictionaries(
    {
        "job_id": u8,
        "num_midstates": u8,
        "starting_nonce": u32,
        "nbits": u32,
        "ntime": u32,
        "merkle_tail": st.binary(min_size=4, max_size=4),
        "midstates": st.lists(hash32, max_size=4),
    }
)


@given(FULL_FIELDS)
def test_full_header_job_matches_construct(fields: dict[str, Any]) -> None:
    packed = frames.pack_full_header_job(**fields)
    assert packed == FULL_HEADER_JOB.build(fields)
    assert len(packed) == frames.FULL_HEADER_JOB_SIZE
    parsed = frames.parse_full_header_job(packed)
    assert dataclasses.asdict(parsed) == fields


@given(MIDSTATE_FIELDS)
def test_midstate_job_matches_construct(fields: dict[str, Any]) -> None:
    states = fields["midstates"]
    padded = [*states, *[bytes(32)] * (4 - len(states))]
    packed = frames.pack_midstate_job(**fields)
    assert packed == MIDSTATE_JOB.build({**fields, "midstates": padded})
    assert len(packed) == frames.MIDSTATE_JOB_SIZE
    parsed = frames.parse_midstate_job(packed)
    assert dataclasses.asdict(parsed) == {**fields, "midstates": tuple(padded)}


def test_real_bm1368_job_frame_parses_and_rebuilds() -> None:
    data = frames.parse_job_frame(REAL_BM1368_JOB)
    job = frames.parse_full_header_job(data)
    assert (job.job_id, job.num_midstates, job.starting_nonce) == (0x78, 1, 0)
    assert job.nbits == 0x17031ABE
    assert job.version == 0x20000000
    assert job.prev_hash.startswith(bytes(8))  # the leading zeros of the block hash
    rebuilt = frames.pack_full_header_job(
        job_id=job.job_id,
        nbits=job.nbits,
        ntime=job.ntime,
        merkle_root=job.merkle_root,
        prev_hash=job.prev_hash,
        version=job.version,
    )
    assert frames.job_frame(rebuilt) == REAL_BM1368_JOB
    assert len(REAL_BM1368_JOB) == 88


def test_sniffed_bm1397_job_frame_parses_and_rebuilds() -> None:
    job = frames.parse_midstate_job(frames.parse_job_frame(SNIFFED_BM1397_JOB))
    assert (job.job_id, job.num_midstates, job.nbits, job.ntime) == (4, 4, 0x170689A3, 0x640AA82F)
    assert job.merkle_tail == bytes.fromhex("6F1CC5E8")
    assert all(m != bytes(32) for m in job.midstates)
    rebuilt = frames.pack_midstate_job(
        job_id=4,
        num_midstates=4,
        nbits=job.nbits,
        ntime=job.ntime,
        merkle_tail=job.merkle_tail,
        midstates=job.midstates,
    )
    assert frames.job_frame(rebuilt) == SNIFFED_BM1397_JOB
    assert len(SNIFFED_BM1397_JOB) == 152


def test_job_frame_with_bad_crc_is_rejected() -> None:
    broken = bytearray(REAL_BM1368_JOB)
    broken[20] ^= 1
    with pytest.raises(FrameError):
        frames.parse_job_frame(bytes(broken))


def test_pack_job_validates_field_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        frames.pack_full_header_job(
            job_id=0, nbits=0, ntime=0, merkle_root=b"", prev_hash=bytes(32), version=0
        )
    with pytest.raises(ValueError, match="at most 4"):
        frames.pack_midstate_job(
            job_id=0,
            num_midstates=4,
            nbits=0,
            ntime=0,
            merkle_tail=bytes(4),
            midstates=[bytes(32)] * 5,
        )
    with pytest.raises(ValueError, match="32 bytes"):
        frames.pack_midstate_job(
            job_id=0, num_midstates=1, nbits=0, ntime=0, merkle_tail=bytes(4), midstates=[b"x"]
        )


# -- replies ----------------------------------------------------------------------------


def _tail(body: bytes, is_nonce: bool) -> dict[str, object]:
    flags = 0x80 if is_nonce else 0
    return {"is_nonce": is_nonce, "reserved": 0, "crc": crc5_reply(body, flags)}


@given(nonce=u32, midstate_num=u8, id_byte=u8, version=u16)
def test_long_nonce_reply_matches_construct(
    nonce: int, midstate_num: int, id_byte: int, version: int
) -> None:
    packed = frames.pack_nonce_reply(nonce, midstate_num, id_byte, version, 11)
    fields = {"nonce": nonce, "midstate_num": midstate_num, "id": id_byte, "version": version}
    assert packed == NONCE_REPLY.build({**fields, "tail": _tail(packed[2:-1], True)})
    parsed = NONCE_REPLY.parse(packed)
    unpacked = frames.unpack_nonce_reply(packed)
    assert (unpacked.nonce, unpacked.midstate_num, unpacked.id, unpacked.version) == (
        parsed.nonce,
        parsed.midstate_num,
        parsed.id,
        parsed.version,
    )
    assert parsed.tail.is_nonce


@given(nonce=u32, midstate_num=u8, id_byte=u8)
def test_short_nonce_reply_matches_construct(nonce: int, midstate_num: int, id_byte: int) -> None:
    packed = frames.pack_nonce_reply(nonce, midstate_num, id_byte, 0, 9)
    fields = {"nonce": nonce, "midstate_num": midstate_num, "id": id_byte}
    assert packed == NONCE_REPLY_SHORT.build({**fields, "tail": _tail(packed[2:-1], True)})
    unpacked = frames.unpack_nonce_reply(packed)
    assert (unpacked.nonce, unpacked.id, unpacked.version) == (nonce, id_byte, 0)


@given(value=u32, address=u8, register=u8, size=st.sampled_from([9, 11]))
def test_register_reply_matches_construct(
    value: int, address: int, register: int, size: int
) -> None:
    packed = frames.pack_register_reply(value, address, register, size)
    fields: dict[str, object] = {"value": value, "chip_address": address, "register": register}
    if size == 11:
        fields["unused"] = b"\x00\x00"
    fmt = REGISTER_REPLY if size == 11 else REGISTER_REPLY_SHORT
    assert packed == fmt.build({**fields, "tail": _tail(packed[2:-1], False)})
    assert not fmt.parse(packed).tail.is_nonce
    unpacked = frames.unpack_register_reply(packed)
    assert (unpacked.value, unpacked.chip_address, unpacked.register) == (value, address, register)


def test_reply_packers_reject_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="version bits"):
        frames.pack_nonce_reply(1, 0, 0, version=5, size=9)
    with pytest.raises(ValueError, match="9 or 11"):
        frames.pack_register_reply(1, 0, 0, size=10)
