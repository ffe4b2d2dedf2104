"""Codecs: job frames from Work, reply decoding and encoding, chip facts, register values."""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import FrameError, WorkError
from stratum_client.work.job import Job, Midstate, Work
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.chips import (
    BM1366,
    BM1368,
    BM1370,
    BM1397,
    MODELS,
    ChipModel,
    chip_addresses,
    model_by_chip_id,
    model_by_name,
    nonce_chip_byte,
    nonce_core,
)
from stratum_client_bm13xx.codec import (
    Bm1366Codec,
    Bm1368Codec,
    Bm1370Codec,
    Bm1397Codec,
    ChipCodec,
    FullHeaderJob,
    MidstateJob,
    NonceReply,
    RegisterReply,
    codec_for,
)
from stratum_client_bm13xx.registers import (
    CountChips,
    Send,
    SetHostBaud,
    baud_after_write,
    init_steps,
    misc_control_baud,
    ticket_difficulty,
    ticket_mask,
    ticket_mask_value,
    ticket_target,
    version_mask_value,
)

# -- an independent SHA-256 compression, so midstates here do not trust the code under test

_K = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
    0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
    0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
    0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
    0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
    0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
    0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
    0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
    0xC67178F2,
]  # fmt: skip
_H0 = (
    0x6A09E667,
    0xBB67AE85,
    0x3C6EF372,
    0xA54FF53A,
    0x510E527F,
    0x9B05688C,
    0x1F83D9AB,
    0x5BE0CD19,
)
_M = 0xFFFFFFFF


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M


def sha256_midstate(block: bytes) -> bytes:
    """State H0..H7 (big-endian words) after compressing one 64-byte block."""
    w = list(struct.unpack(">16I", block))
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M)
    a, b, c, d, e, f, g, h = _H0
    for i in range(64):
        t1 = h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[i] + w[i]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    return struct.pack(
        ">8I", *((x + y) & _M for x, y in zip(_H0, (a, b, c, d, e, f, g, h), strict=True))
    )


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# -- vectors ----------------------------------------------------------------------------

T2_PREVHASH = bytes.fromhex("0c859545a3498373a57452fac22eb7113df2a465000543520000000000000000")
T2_ROOT = bytes.fromhex("5bdc1968499c3393873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778eb")
T2_HEADER = bytes.fromhex(
    "040000204595850c738349a3fa5274a511b72ec265a4f23d5243050000000000000000005bdc1968"
    "499c3393873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778ebb52570643aae0517d19e020a"
)
T2_BM1370_FRAME = bytes.fromhex(
    "55aa21561801000000003aae0517b5257064d63778ebbf77087d9d1a376b0a97fc3a07a1c3a5873edf8e"
    "499c33935bdc196800000000000000005243050065a4f23d11b72ec2fa5274a5738349a34595850c0400"
    "0020abf4"
)
T2_MIDSTATE = bytes.fromhex("acd5e4b16adbd0cdbedcec318f5deb700b4c5f48b4111603c83e689946a9a88f")

V1397_PREVHASH = bytes.fromhex("bf44fd3513dc7b837d60e5c628b572b448d204a8000007490000000000000000")
V1397_ROOT = bytes.fromhex("cd1be82132ef0d12053dcece1fa0247fcfdb61d4dbd3eb32ea9ef9b4c604a846")
V1397_HEADER = bytes.fromhex(
    "0400002035fd44bf837bdc13c6e5607db472b528a804d248490700000000000000000000cd1be82132ef"
    "0d12053dcece1fa0247fcfdb61d4dbd3eb32ea9ef9b4c604a846d88b656401dd051700000000"
)
V1397_MIDSTATE_LE = bytes.fromhex(
    "91DFEA528A9F73683D0D495DD6DD7415E1CA21CB411759E3E05D7D5FF285314D"
)


def make_job(prevhash: bytes, nbits: int, ntime: int, version: int = 0x20000004) -> Job:
    return Job(
        job_id="0",
        prevhash=prevhash,
        coinb1=b"",
        coinb2=b"",
        merkle_branch=(),
        version=version,
        nbits=nbits,
        ntime=ntime,
        clean_jobs=True,
        extranonce1=b"",
        extranonce2_size=8,
        difficulty=1.0,
    )


T2_WORK = Work(
    job=make_job(T2_PREVHASH, 0x1705AE3A, 0x647025B5),
    extranonce2=bytes.fromhex("0100000000000000"),
    merkle_root=T2_ROOT,
    version=0x20000004,
    ntime=0x647025B5,
)


def v1397_work(midstate_count: int) -> Work:
    states = []
    version = 0x20000004
    for _ in range(midstate_count):
        header = version.to_bytes(4, "little") + V1397_HEADER[4:]
        states.append(Midstate(version, sha256_midstate(header[:64])))
        version += 0x2000
    return Work(
        job=make_job(V1397_PREVHASH, 0x1705DD01, 0x64658BD8),
        extranonce2=bytes(8),
        merkle_root=V1397_ROOT,
        version=0x20000004,
        ntime=0x64658BD8,
        midstates=tuple(states),
    )


# -- the test's own SHA agrees with the published midstates ------------------------------


def test_reference_midstates() -> None:
    assert sha256_midstate(T2_HEADER[:64]) == T2_MIDSTATE
    state = sha256_midstate(V1397_HEADER[:64])
    le_words = b"".join(state[i : i + 4][::-1] for i in range(0, 32, 4))
    assert le_words == V1397_MIDSTATE_LE
    assert dsha(T2_HEADER)[::-1].hex().startswith("00000000005fe144")


# -- full-header jobs -------------------------------------------------------------------


def test_t2_bm1370_job_frame_is_byte_exact() -> None:
    assert Bm1370Codec().encode_job(T2_WORK, 0x18) == T2_BM1370_FRAME


def test_job_frame_decodes_back_to_the_header() -> None:
    job = Bm1370Codec().decode_job(T2_BM1370_FRAME)
    assert isinstance(job, FullHeaderJob)
    assert (job.job_id, job.starting_nonce, job.version) == (0x18, 0, 0x20000004)
    assert job.header(0x0A029ED1) == T2_HEADER
    rolled = job.header(0x0A029ED1, version_bits=0x040D0000)
    assert rolled[:4] == (0x240D0004).to_bytes(4, "little")


@pytest.mark.parametrize("codec_type", [Bm1366Codec, Bm1368Codec])
def test_other_full_header_models_share_the_layout(codec_type: type[ChipCodec]) -> None:
    frame = codec_type().encode_job(T2_WORK, 0x18)
    assert frame[:4] == T2_BM1370_FRAME[:4]
    assert frame[5:-2] == T2_BM1370_FRAME[5:-2]


@pytest.mark.parametrize(
    ("codec", "job_id"),
    [(Bm1370Codec(), 0x0C), (Bm1370Codec(), 128), (Bm1366Codec(), 0x04), (Bm1397Codec(), 0x02)],
)
def test_job_ids_the_chip_cannot_echo_are_refused(codec: ChipCodec, job_id: int) -> None:
    work = v1397_work(1) if isinstance(codec, Bm1397Codec) else T2_WORK
    with pytest.raises(ValueError, match="not a job id"):
        codec.encode_job(work, job_id)


def test_malformed_work_is_a_work_error() -> None:
    broken = Work(
        job=T2_WORK.job,
        extranonce2=b"",
        merkle_root=b"\x00" * 31,
        version=1,
        ntime=1,
    )
    with pytest.raises(WorkError):
        Bm1366Codec().encode_job(broken, 8)


# -- BM1397 midstate jobs ---------------------------------------------------------------


def test_bm1397_vector_frame_with_crc_6b1d() -> None:
    wire = V1397_MIDSTATE_LE[::-1]
    data = frames.pack_midstate_job(
        job_id=4,
        num_midstates=4,
        nbits=0x1705DD01,
        ntime=0x64658BD8,
        merkle_tail=V1397_ROOT[28:],
        midstates=[wire],
    )
    frame = frames.job_frame(data)
    assert frame[:22].hex().upper() == "55AA2196040400000000" + "01DD0517D88B6564C604A846"
    assert frame[22:26] == bytes.fromhex("4D3185F2")
    assert frame[50:54] == bytes.fromhex("52EADF91")
    assert frame[54:-2] == bytes(96)
    assert frame[-2:] == b"\x6b\x1d"


def test_bm1397_codec_encodes_work_midstates_in_wire_order() -> None:
    codec = Bm1397Codec()
    work = v1397_work(1)
    frame = codec.encode_job(work, 4)
    wire = V1397_MIDSTATE_LE[::-1]
    expected = frames.pack_midstate_job(
        job_id=4,
        num_midstates=1,
        nbits=0x1705DD01,
        ntime=0x64658BD8,
        merkle_tail=V1397_ROOT[28:],
        midstates=[wire],
    )
    assert frame == frames.job_frame(expected)
    job = codec.decode_job(frame)
    assert isinstance(job, MidstateJob)
    assert job.midstates == (work.midstates[0].state,)
    assert job.tail_block(0) == V1397_HEADER[64:]


def test_bm1397_four_midstates_round_trip() -> None:
    codec = Bm1397Codec()
    work = v1397_work(4)
    job = codec.decode_job(codec.encode_job(work, 0x7C))
    assert isinstance(job, MidstateJob)
    assert job.job_id == 0x7C
    assert job.midstates == tuple(m.state for m in work.midstates)


@pytest.mark.parametrize("count", [0, 2, 3])
def test_bm1397_needs_one_or_four_midstates(count: int) -> None:
    with pytest.raises(WorkError, match="1 or 4 midstates"):
        Bm1397Codec().encode_job(v1397_work(count), 4)


def test_commented_out_bm1397_hardware_vector() -> None:
    slot2 = bytes.fromhex("7E027035B1ACBAF23EA01A527344FAF76AB476D328216118B7760F7B1B22D229")
    data = frames.pack_midstate_job(
        job_id=0x18,
        num_midstates=4,
        starting_nonce=0x0A4C049B,
        nbits=0x1705AE3A,
        ntime=0x647384A0,
        merkle_tail=bytes.fromhex("50E37161"),
        midstates=[bytes(32), bytes(32), slot2, bytes(32)],
    )
    assert data[:18].hex().upper() == "1804" + "9B044C0A" + "3AAE0517" + "A0847364" + "50E37161"
    assert data[18 + 64 : 18 + 96] == slot2
    codec = Bm1397Codec()
    reply = codec.decode_reply(codec.encode_nonce_reply(0x0A4C049B, 0x18, midstate_index=2))
    assert isinstance(reply, NonceReply)
    assert (reply.nonce, reply.job_id, reply.midstate_index) == (0x0A4C049B, 0x18, 2)


# -- replies from real chips ------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "frame", "expected"),
    [
        # expected: nonce, job id, core, small core, version bits
        (Bm1368Codec(), "AA 55 52 00 30 25 00 91 00 B1 93", (0x25300052, 0x48, 41, 1, 0x00162000)),
        (Bm1368Codec(), "AA 55 7A 01 76 B4 00 8B 0B DB 9A", (0xB476017A, 0x40, 61, 11, 0x017B6000)),
        (Bm1368Codec(), "AA 55 66 00 CB 32 02 F9 23 39 91", (0x32CB0066, 0x78, 51, 9, 0x04672000)),
        (Bm1370Codec(), "AA 55 4C 03 52 75 0C D2 05 A2 9C", (0x7552034C, 0x68, 38, 2, 0x00B44000)),
    ],
)
def test_real_nonce_replies_decode_and_re_encode(
    codec: ChipCodec, frame: str, expected: tuple[int, int, int, int, int]
) -> None:
    raw = bytes.fromhex(frame)
    reply = codec.decode_reply(raw)
    assert isinstance(reply, NonceReply)
    fields = (reply.nonce, reply.job_id, reply.core, reply.small_core, reply.version_bits)
    assert fields == expected
    assert reply.chip_index == 0
    nonce, job_id, _, small_core, version_bits = expected
    again = codec.encode_nonce_reply(
        nonce,
        job_id,
        version_bits=version_bits,
        small_core=small_core,
        midstate_num=reply.midstate_num,
    )
    assert again == raw


def test_real_bm1397_nonce_reply() -> None:
    reply = Bm1397Codec().decode_reply(bytes.fromhex("AA 55 00 03 EA 0F 02 20 9C"))
    assert isinstance(reply, NonceReply)
    # The sniffer's notes read the nonce big-endian ("0003EA0F"); header and submit use LE.
    assert (reply.nonce, reply.job_id, reply.midstate_index, reply.midstate_num) == (
        0x0FEA0300,
        0x20,
        0,
        2,
    )


@pytest.mark.parametrize(
    ("codec", "frame"),
    [
        (Bm1366Codec(), "AA 55 13 66 00 00 00 00 00 00 05"),
        (Bm1368Codec(), "AA 55 13 68 00 00 00 00 00 00 0F"),
        (Bm1397Codec(), "AA 55 13 97 18 00 00 00 06"),
    ],
)
def test_real_chip_id_replies(codec: ChipCodec, frame: str) -> None:
    raw = bytes.fromhex(frame)
    reply = codec.decode_reply(raw)
    assert isinstance(reply, RegisterReply)
    assert (reply.register, reply.chip_address, reply.chip_id) == (0, 0, codec.model.chip_id)
    assert codec.encode_chip_id_reply() == raw


@pytest.mark.parametrize(
    "frame",
    [
        "AA 55 52 00 30 25 00 91 00 B1 92",  # CRC
        "AA 55 52 00 30 25 00 91 00 B1",  # short
        "55 AA 52 00 30 25 00 91 00 B1 93",  # wrong preamble
    ],
)
def test_decode_reply_rejects_broken_frames(frame: str) -> None:
    with pytest.raises(FrameError):
        Bm1368Codec().decode_reply(bytes.fromhex(frame))


# -- the encode direction an emulator relies on -----------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)


@given(
    codec=st.sampled_from([Bm1366Codec(4), Bm1368Codec(2), Bm1370Codec(1)]),
    nonce=u32,
    data=st.data(),
    version=st.integers(0, 0xFFFF),
    midstate_num=st.integers(0, 255),
)
def test_full_header_nonce_reply_round_trip(
    codec: ChipCodec, nonce: int, data: st.DataObject, version: int, midstate_num: int
) -> None:
    job_id = data.draw(st.sampled_from(codec.model.job_ids()))
    small_core = data.draw(st.integers(0, codec.model.reply_sub_mask))
    frame = codec.encode_nonce_reply(
        nonce, job_id, version_bits=version << 13, small_core=small_core, midstate_num=midstate_num
    )
    reply = codec.decode_reply(frame)
    assert isinstance(reply, NonceReply)
    assert (reply.nonce, reply.job_id, reply.version_bits) == (nonce, job_id, version << 13)
    assert (reply.small_core, reply.midstate_num, reply.midstate_index) == (
        small_core,
        midstate_num,
        0,
    )
    assert reply.chip_index == codec.chip_of_nonce(nonce)
    assert reply.core == nonce_core(nonce)


@given(nonce=u32, data=st.data())
def test_bm1397_nonce_reply_round_trip(nonce: int, data: st.DataObject) -> None:
    codec = Bm1397Codec(2)
    job_id = data.draw(st.sampled_from(BM1397.job_ids()))
    index = data.draw(st.integers(0, 3))
    reply = codec.decode_reply(codec.encode_nonce_reply(nonce, job_id, midstate_index=index))
    assert isinstance(reply, NonceReply)
    assert (reply.nonce, reply.job_id, reply.midstate_index, reply.version_bits) == (
        nonce,
        job_id,
        index,
        0,
    )


@given(value=u32, register=st.integers(0, 255), index=st.integers(0, 3))
def test_register_reply_round_trip(value: int, register: int, index: int) -> None:
    for codec in (Bm1370Codec(4), Bm1397Codec(4)):
        address = codec.addresses[index]
        reply = codec.decode_reply(codec.encode_register_reply(value, address, register))
        assert reply == RegisterReply(value, address, index, register)


def test_nonce_bits_identify_chip_and_core() -> None:
    codec = Bm1370Codec(4)
    assert codec.addresses == (0, 64, 128, 192) == chip_addresses(4)
    nh = 0x5A << 25 | 0x85 << 17 | 0x1234  # core 0x5A, address byte 0x85 → chip 2
    nonce = int.from_bytes(nh.to_bytes(4, "big"), "little")
    assert (nonce_core(nonce), nonce_chip_byte(nonce), codec.chip_of_nonce(nonce)) == (
        0x5A,
        0x85,
        2,
    )
    reply = codec.decode_reply(codec.encode_nonce_reply(nonce, 0x18))
    assert isinstance(reply, NonceReply)
    assert (reply.chip_address, reply.chip_index, reply.core) == (0x85, 2, 0x5A)


def test_chip_index_is_clamped_on_uneven_chains() -> None:
    codec = Bm1366Codec(3)
    assert codec.addresses == (0, 85, 170)
    assert [codec.chip_index(a) for a in (0, 84, 85, 169, 170, 254, 255)] == [0, 0, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Bm1370Codec().encode_nonce_reply(1, 0x18, version_bits=0x1000), "version bits"),
        (lambda: Bm1370Codec().encode_nonce_reply(1, 0x18, version_bits=1 << 29), "version bits"),
        (lambda: Bm1370Codec().encode_nonce_reply(1, 0x18, midstate_index=1), "midstate"),
        (lambda: Bm1366Codec().encode_nonce_reply(1, 0x18, small_core=8), "sub id"),
        (lambda: Bm1366Codec().encode_nonce_reply(1, 0x1C), "job id"),
        (lambda: Bm1397Codec().encode_nonce_reply(1, 0x18, version_bits=1 << 13), "version"),
        (lambda: Bm1397Codec().encode_nonce_reply(1, 0x18, midstate_index=4), "sub id"),
    ],
)
def test_impossible_replies_are_refused(call: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# -- chip facts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "slots", "first"),
    [
        (BM1366, 16, (8, 16, 24)),
        (BM1368, 16, (24, 48, 72)),
        (BM1370, 16, (24, 48, 72)),
        (BM1397, 32, (4, 8, 12)),
    ],
)
def test_job_id_cycles(model: ChipModel, slots: int, first: tuple[int, ...]) -> None:
    assert model.job_slots == slots
    assert model.job_ids()[:3] == first
    assert all(model.split_reply_id(model.reply_id_byte(j, 0)) == (j, 0) for j in model.job_ids())


def test_model_lookup_and_nominal_rates() -> None:
    assert model_by_name("bm1370") is BM1370
    assert model_by_chip_id(0x1397) is BM1397
    assert codec_for("BM1368", 2).model is BM1368
    assert codec_for(BM1366).chip_count == 1
    assert BM1370.expected_ghs(525) == pytest.approx(1071, abs=0.1)
    assert {m.reply_size for m in MODELS.values()} == {9, 11}
    with pytest.raises(ValueError, match="unknown chip model"):
        model_by_name("BM1387")
    with pytest.raises(ValueError, match="unknown chip id"):
        model_by_chip_id(0x1387)
    with pytest.raises(ValueError, match="no codec"):
        codec_for("BM1387")
    with pytest.raises(ValueError, match="chip count"):
        Bm1370Codec(0)


# -- register values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("difficulty", "mask", "effective"),
    [
        (256, "000000FF", 256),
        (512, "000080FF", 512),
        (4, "000000C0", 4),
        (1, "00000000", 1),
        (0.5, "00000000", 1),
        (300, "000000FF", 256),
        (255.5, "000000FF", 256),
        (65536, "0000FFFF", 65536),
        (131072, "0080FFFF", 131072),
        (2.0**40, "FFFFFFFF", 2**32),
    ],
)
def test_ticket_mask(difficulty: float, mask: str, effective: int) -> None:
    assert ticket_mask(difficulty) == bytes.fromhex(mask)
    assert ticket_difficulty(difficulty) == effective
    assert ticket_mask_value(difficulty) == effective - 1


def test_ticket_target_is_the_chips_zero_bit_rule() -> None:
    target = ticket_target(256)
    assert target == 1 << (256 - 32 - 8)
    hardest_reported = (target - 1).to_bytes(32, "little")
    difficulty = 0xFFFF * 2**208 / int.from_bytes(hardest_reported, "little")
    assert 256 * 65535 / 65536 <= difficulty < 256
    with pytest.raises(ValueError, match="finite"):
        ticket_target(float("nan"))


def test_version_mask_value() -> None:
    assert version_mask_value(0x1FFFE000) == bytes.fromhex("9000FFFF")
    assert version_mask_value(0) == bytes.fromhex("90000000")
    with pytest.raises(ValueError, match=r"13\.\.28"):
        version_mask_value(0x20000000)


def test_baud_rates() -> None:
    assert misc_control_baud(bytes.fromhex("00007A31")) == 115_741
    assert misc_control_baud(bytes.fromhex("00006031")) == 3_125_000
    assert baud_after_write(BM1370, 0x28, bytes.fromhex("11300200")) == 1_000_000
    assert baud_after_write(BM1397, 0x18, bytes.fromhex("00006031")) == 3_125_000
    assert baud_after_write(BM1366, 0x18, bytes.fromhex("00007A31")) == 115_741
    assert baud_after_write(BM1366, 0x18, bytes.fromhex("FF0FC100")) is None
    assert baud_after_write(BM1397, 0x28, bytes.fromhex("0600000F")) is None


# -- init sequences ---------------------------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.name)
def test_init_sequences_are_well_formed(model: ChipModel) -> None:
    steps = init_steps(model, 4)
    sends = [s.frame for s in steps if isinstance(s, Send)]
    assert all(frames.parse_command(f) for f in sends)
    counts = [s for s in steps if isinstance(s, CountChips)]
    assert counts == [CountChips(4)]
    assert sends[sends.index(frames.read_register(0)) + 0] == frames.read_register(0)
    for address in (0, 64, 128, 192):
        assert frames.set_address(address) in sends
    assert sends.index(frames.chain_inactive()) < sends.index(frames.set_address(192))
    assert frames.write_register(0x14, ticket_mask(256)) in sends
    assert isinstance(steps[-1], SetHostBaud)
    assert steps[-1].baud == (3_125_000 if model is BM1397 else 1_000_000)


def test_bm1370_init_starts_like_the_reference() -> None:
    steps = init_steps(BM1370, 1)
    head = [s.frame.hex().upper() if isinstance(s, Send) else s for s in steps[:5]]
    assert head == [
        "55AA510900A49000FFFF1C",
        "55AA510900A49000FFFF1C",
        "55AA510900A49000FFFF1C",
        "55AA520500000A",
        CountChips(1),
    ]
    hcn = frames.write_register(0x10, (798_647).to_bytes(4, "big"))
    assert Send(hcn, "HASH_COUNTING_NUMBER") in steps


def test_bm1397_init_contains_the_sniffed_bring_up_in_order() -> None:
    sends = [s.frame for s in init_steps(BM1397, 1, mhz=200, ticket_diff=1) if isinstance(s, Send)]
    sniffed = [
        "55 AA 52 05 00 00 0A",
        "55 AA 53 05 00 00 03",
        "55 AA 40 05 00 00 1C",
        "55 AA 51 09 00 80 00 00 00 00 1C",
        "55 AA 51 09 00 84 00 00 00 00 11",
        "55 AA 51 09 00 20 00 00 00 01 02",
        "55 AA 51 09 00 3C 80 00 80 74 10",
        "55 AA 51 09 00 14 00 00 00 00 1C",
        "55 AA 51 09 00 68 C0 70 01 11 00",
        "55 AA 51 09 00 28 06 00 00 0F 18",
        "55 AA 51 09 00 18 00 00 7A 31 15",
        "55 AA 51 09 00 70 0F 0F 0F 00 19",
        "55 AA 51 09 00 70 0F 0F 0F 00 19",
    ]
    it = iter(sends)
    assert all(any(bytes.fromhex(f) == s for s in it) for f in sniffed)


def test_version_mask_is_rewritten_after_hcn_on_bm1366() -> None:
    steps = init_steps(BM1366, 1)
    sends = [s.frame for s in steps if isinstance(s, Send)]
    a4 = frames.write_register(0xA4, bytes.fromhex("9000FFFF"))
    assert sends[-2] == a4  # then the fast-UART write
    assert sends[-1] == bytes.fromhex("55AA510900281130020003")


def test_codec_exposes_init_and_interval() -> None:
    codec = Bm1368Codec(2)
    assert codec.init_steps(mhz=400) == init_steps(BM1368, 2, mhz=400)
    assert codec.job_interval_ms(490) == 250
    assert codec.next_job_id(120) == 16


# -- speed: encode a job in ≤ 10 % of its wire time at 1 Mbaud --------------------------


def _best_us(fn: Callable[[], object], loops: int = 2000) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - start) / loops * 1e6)
    return best


def test_hot_paths_are_cheap() -> None:
    codec = Bm1370Codec(1)
    reply = bytes.fromhex("AA554C0352750CD205A29C")
    assert _best_us(lambda: codec.encode_job(T2_WORK, 0x18)) < 88
    assert _best_us(lambda: codec.decode_reply(reply)) < 30
