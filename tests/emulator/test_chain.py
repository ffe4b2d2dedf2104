"""The sans-IO emulated chain: enumeration, register writes, framing, real nonces, faults.

Every nonce the chain reports is checked against a header rebuilt here from the test
vector's notify with nothing but ``struct`` and ``hashlib``: coinbase, merkle root,
prevhash word order, the rolled version (full-header chips) or the chosen midstate's
version (BM1397), and the scaled ticket bound.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_client.work import JobBuilder, Work, parse_notify, sha256_midstate
from stratum_client_bm13xx import frames, registers
from stratum_client_bm13xx.chips import MODELS, chip_addresses, nonce_chip_byte
from stratum_client_bm13xx.codec import NonceReply, RegisterReply
from stratum_client_bm13xx.emulator import hashing
from stratum_client_bm13xx.emulator.chain import POWER_UP_BAUD, EmulatedChain
from stratum_client_bm13xx.emulator.faults import Faults
from stratum_client_bm13xx.emulator.hashing import sha256d_from_midstate
from stratum_client_bm13xx.registers import Reg, Send

VECTORS = Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json"
MASK = 0x1FFFE000
TICKET = 256
SCALE = 2.0**-30
"""Ticket 256 × 2⁻³⁰ = 2⁻²²: one nonce per 1024 hashes on average."""
FULL_HEADER = ("BM1366", "BM1368", "BM1370")


# --------------------------------------------------------------------------------------
# the vector, rebuilt independently
# --------------------------------------------------------------------------------------


def _vector() -> dict[str, object]:
    jobs = json.loads(VECTORS.read_text())["jobs"]
    return next(j for j in jobs if j["name"] == "slush-2023-diff683")


VECTOR = _vector()
NOTIFY: list[object] = VECTOR["notify"]  # type: ignore[assignment]


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True)
class Reference:
    """One work unit's header fields recomputed from the notify hex."""

    extranonce2: bytes
    version: int
    versions: tuple[int, ...]
    """BM1397: the version of each midstate the work carries."""

    def header(self, version: int, nonce: int) -> bytes:
        prev = bytes.fromhex(str(NOTIFY[1]))
        prevhash = b"".join(prev[i : i + 4][::-1] for i in range(0, 32, 4))
        coinbase = (
            bytes.fromhex(str(NOTIFY[2]))
            + bytes.fromhex(str(VECTOR["extranonce1"]))
            + self.extranonce2
            + bytes.fromhex(str(NOTIFY[3]))
        )
        root = dsha(coinbase)
        for branch in NOTIFY[4]:  # type: ignore[attr-defined]
            root = dsha(root + bytes.fromhex(branch))
        ntime, nbits = int(str(NOTIFY[7]), 16), int(str(NOTIFY[6]), 16)
        return struct.pack("<I32s32sIII", version, prevhash, root, ntime, nbits, nonce)


def make_work(extranonce2: int, midstates: int, mask: int = MASK) -> tuple[Work, Reference]:
    job = parse_notify(
        NOTIFY,
        extranonce1=bytes.fromhex(str(VECTOR["extranonce1"])),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=mask,
    )
    en2 = extranonce2.to_bytes(4, "little")
    work = JobBuilder(job).build(en2, midstates=midstates)
    versions = tuple(m.version for m in work.midstates)
    return work, Reference(en2, int(str(NOTIFY[5]), 16), versions)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def replies(chain: EmulatedChain, data: bytes) -> list[RegisterReply | NonceReply]:
    """Decode a clean reply stream frame by frame (every frame must be whole and valid)."""
    size = chain.codec.reply_size
    assert len(data) % size == 0
    return [chain.codec.decode_reply(data[i : i + size]) for i in range(0, len(data), size)]


def register_replies(chain: EmulatedChain, data: bytes) -> list[RegisterReply]:
    out = replies(chain, data)
    assert all(isinstance(r, RegisterReply) for r in out)
    return out  # type: ignore[return-value]


def nonce_replies(chain: EmulatedChain, data: bytes) -> list[NonceReply]:
    out = replies(chain, data)
    assert all(isinstance(r, NonceReply) for r in out)
    return out  # type: ignore[return-value]


def enumerate_chain(chain: EmulatedChain) -> None:
    """Chain inactive and the addresses the reference firmware gives."""
    chain.receive(frames.chain_inactive())
    for address in chip_addresses(chain.chip_count):
        chain.receive(frames.set_address(address))


def program(chain: EmulatedChain, ticket: int = TICKET, mask: int = MASK) -> None:
    chain.receive(frames.write_register(Reg.TICKET_MASK, registers.ticket_mask(ticket)))
    chain.receive(frames.write_register(Reg.VERSION_MASK, registers.version_mask_value(mask)))


def hash_until(
    chain: EmulatedChain, done: Callable[[bytes], bool], limit: int = 3_000_000
) -> bytes:
    out = b""
    while not done(out):
        assert chain.hashes < limit, "the chain found too few nonces"
        out += chain.hash_step(4096)
    return out


def verify(chain: EmulatedChain, reply: NonceReply, ref: Reference) -> bytes:
    """Fail unless ``reply`` is a genuine nonce; returns the digest."""
    if chain.model.full_header:
        assert reply.version_bits & ~MASK == 0
        version = ref.version | reply.version_bits
    else:
        assert reply.version_bits == 0
        version = ref.versions[reply.midstate_index]
    digest = dsha(ref.header(version, reply.nonce))
    value = int.from_bytes(digest, "little")
    assert value < int((1 << (224 - 8)) / SCALE)
    # the ticket bound is 65535/65536 of the difficulty, so allow exactly that much
    effective = TICKET * SCALE
    assert (0xFFFF << 208) / value >= effective * 65535 / 65536
    assert reply.chip_index == min(nonce_chip_byte(reply.nonce) // (256 // chain.chip_count), 255)
    return digest


def first_job_id(chain: EmulatedChain) -> int:
    return chain.model.job_ids()[0]


# --------------------------------------------------------------------------------------
# enumeration and addressing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chips", [1, 4])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_chip_id_read_answers_once_per_chip(model: str, chips: int) -> None:
    chain = EmulatedChain(model, chips)
    out = chain.receive(frames.read_register(Reg.CHIP_ID))
    found = register_replies(chain, out)
    assert [r.chip_id for r in found] == [MODELS[model].chip_id] * chips
    assert {(r.chip_address, r.register) for r in found} == {(0, 0)}
    assert out[:4] == b"\xaa\x55" + MODELS[model].chip_id.to_bytes(2, "big")


@pytest.mark.parametrize("model", ["BM1366", "BM1397"])
def test_set_address_after_chain_inactive(model: str) -> None:
    chain = EmulatedChain(model, 4)
    chain.receive(frames.set_address(0x40))  # not inactive yet: nobody takes it
    assert chain.addresses == (0, 0, 0, 0)
    enumerate_chain(chain)
    assert chain.addresses == (0x00, 0x40, 0x80, 0xC0)
    found = register_replies(chain, chain.receive(frames.read_register(Reg.CHIP_ID)))
    assert [r.chip_address for r in found] == [0x00, 0x40, 0x80, 0xC0]
    assert [r.chip_index for r in found] == [0, 1, 2, 3]
    one = register_replies(chain, chain.receive(frames.read_register(Reg.CHIP_ID, 0x80)))
    assert [r.chip_address for r in one] == [0x80]
    assert chain.receive(frames.read_register(Reg.CHIP_ID, 0x81)) == b""


def test_unaddressed_chips_all_answer_address_zero() -> None:
    chain = EmulatedChain("BM1368", 3)
    found = register_replies(chain, chain.receive(frames.read_register(Reg.CHIP_ID, 0)))
    assert len(found) == 3


def test_bad_crc_and_garbage_are_ignored() -> None:
    chain = EmulatedChain("BM1370", 2)
    read = bytearray(frames.read_register(Reg.CHIP_ID))
    read[-1] ^= 0x01
    assert chain.receive(b"\x00\xff\x55" + bytes(read)) == b""
    good = chain.receive(b"\x13\x37" + frames.read_register(Reg.CHIP_ID))
    assert len(register_replies(chain, good)) == 2


# --------------------------------------------------------------------------------------
# register writes
# --------------------------------------------------------------------------------------


def test_ticket_version_mask_and_pll_writes() -> None:
    chain = EmulatedChain("BM1366", 2, difficulty_scale=0.25)
    program(chain, ticket=512, mask=0x00FFE000)
    assert [c.ticket_difficulty for c in chain.chips] == [512, 512]
    assert chain.effective_difficulty(1) == 128.0
    assert chain.target(0) == (1 << (224 - 9)) * 4
    assert [c.version_mask for c in chain.chips] == [0x00FFE000] * 2
    for step in registers.frequency_steps(chain.model, 485.0):
        assert isinstance(step, Send)
        chain.receive(step.frame)
    assert [c.mhz for c in chain.chips] == [485.0, 485.0]


def test_bm1397_pll_and_ticket() -> None:
    chain = EmulatedChain("BM1397", 1)
    for step in registers.frequency_steps(chain.model, 425.0):
        if isinstance(step, Send):
            chain.receive(step.frame)
    assert chain.chips[0].mhz == 425.0
    program(chain, ticket=16)
    assert chain.chips[0].ticket_difficulty == 16


def test_write_to_one_chip_and_read_it_back() -> None:
    chain = EmulatedChain("BM1370", 4)
    enumerate_chain(chain)
    chain.receive(frames.write_register(Reg.TICKET_MASK, registers.ticket_mask(1024), 0x40))
    assert [c.ticket_difficulty for c in chain.chips] == [1, 1024, 1, 1]
    (reply,) = register_replies(chain, chain.receive(frames.read_register(Reg.TICKET_MASK, 0x40)))
    assert reply.value.to_bytes(4, "big") == registers.ticket_mask(1024)
    assert (reply.chip_address, reply.register) == (0x40, Reg.TICKET_MASK)
    (unknown,) = register_replies(chain, chain.receive(frames.read_register(0xEE, 0x80)))
    assert unknown.value == 0


@pytest.mark.parametrize(
    ("model", "register", "value", "baud", "other"),
    [
        (
            "BM1366",
            Reg.FAST_UART,
            registers.FAST_UART_1M,
            1_000_000,
            (Reg.MISC_CONTROL, "ff0fc100"),
        ),
        (
            "BM1370",
            Reg.FAST_UART,
            registers.FAST_UART_1M,
            1_000_000,
            (Reg.MISC_CONTROL, "f000c100"),
        ),
        (
            "BM1397",
            Reg.MISC_CONTROL,
            registers.MISC_CONTROL_MAX_BAUD,
            3_125_000,
            (Reg.FAST_UART, "0600000f"),
        ),
    ],
    ids=["BM1366", "BM1370", "BM1397"],
)
def test_baud_writes(
    model: str, register: int, value: bytes, baud: int, other: tuple[int, str]
) -> None:
    chain = EmulatedChain(model, 2)
    assert chain.baudrate == POWER_UP_BAUD
    chain.receive(frames.write_register(other[0], bytes.fromhex(other[1])))  # no baud change
    assert chain.baudrate == POWER_UP_BAUD
    chain.receive(frames.write_register(register, value))
    assert chain.baudrate == baud
    chain.reset()
    assert chain.baudrate == POWER_UP_BAUD


@pytest.mark.parametrize("model", sorted(MODELS))
def test_whole_init_sequence_is_accepted_byte_by_byte(model: str) -> None:
    """Every write of the reference init is taken silently, however the bytes arrive."""
    merged, split = EmulatedChain(model, 3), EmulatedChain(model, 3)
    stream = b"".join(
        s.frame for s in registers.init_steps(MODELS[model], 3) if isinstance(s, Send)
    )
    merged_out = merged.receive(stream)
    split_out = b"".join(split.receive(stream[i : i + 1]) for i in range(len(stream)))
    split_out += split.flush_input()
    assert merged_out == split_out
    assert len(register_replies(merged, merged_out)) == 3  # the one chip-id read
    for chain in (merged, split):
        assert chain.addresses == chip_addresses(3)
        assert chain.baudrate == (1_000_000 if chain.model.full_header else 3_125_000)
        assert chain.chips[2].mhz == pytest.approx(MODELS[model].default_mhz, rel=0.02)
        assert chain.chips[0].ticket_difficulty == 256


def test_counter_registers_follow_the_hashing() -> None:
    chain = EmulatedChain("BM1366", 2, difficulty_scale=2.0**-30)
    program(chain)
    work, _ = make_work(1, 0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    chain.hash_step(20_000)
    out = register_replies(chain, chain.receive(frames.read_register(Reg.TOTAL_COUNT)))
    for reply, chip in zip(out, chain.chips, strict=True):
        assert reply.value == int(chip.hashes * 2**30) >> 32 > 0


# --------------------------------------------------------------------------------------
# jobs and genuine nonces
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chips", [1, 4])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_nonce_hashes_to_the_effective_difficulty(model: str, chips: int) -> None:
    chain = EmulatedChain(model, chips, difficulty_scale=SCALE)
    enumerate_chain(chain)
    program(chain)
    work, ref = make_work(7, 0 if chain.model.full_header else 4)
    job_id = chain.model.job_ids()[2]
    chain.receive(chain.codec.encode_job(work, job_id))
    assert chain.current_job_id == job_id
    size = chain.codec.reply_size
    out = hash_until(chain, lambda o: len(o) >= 24 * size * chips)
    found = nonce_replies(chain, out)
    assert len(found) == len(chain.reported) == chain.faults.nonces_sent
    for reply, record in zip(found, chain.reported, strict=True):
        digest = verify(chain, reply, ref)
        assert reply.job_id == job_id
        assert (record.nonce, record.digest, record.chip) == (reply.nonce, digest, reply.chip_index)
        assert (record.version_bits, record.core) == (reply.version_bits, reply.core)
        assert record.midstate_index == reply.midstate_index
    assert {r.chip_index for r in found} == set(range(chips))
    if chain.model.full_header:
        assert len({r.version_bits for r in found}) > 1, "versions are rolled"
        assert {r.small_core for r in found} == {r.version_bits >> 13 & 0x0F for r in found}
    else:
        assert len({r.midstate_index for r in found}) > 1, "all four midstates are searched"


def test_the_search_is_deterministic_and_never_repeats() -> None:
    a, b = (EmulatedChain("BM1370", 2, difficulty_scale=SCALE) for _ in range(2))
    work, _ = make_work(3, 0)
    for chain in (a, b):
        program(chain)
        chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    out = a.hash_step(200_000)
    assert out == b.hash_step(200_000)
    keys = [(r.nonce, r.version_bits) for r in a.reported]
    assert len(keys) == len(set(keys)) > 50


def test_without_a_version_mask_nothing_is_rolled() -> None:
    chain = EmulatedChain("BM1368", 1, difficulty_scale=SCALE)
    program(chain, mask=0)
    work, ref = make_work(2, 0, mask=0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    found = nonce_replies(chain, hash_until(chain, lambda o: len(o) >= 10 * 11))
    assert {r.version_bits for r in found} == {0}
    assert {r.small_core for r in found} == {0}
    for reply in found:
        verify(chain, reply, ref)


def test_newest_job_is_searched_and_slots_are_overwritten() -> None:
    chain = EmulatedChain("BM1366", 2, difficulty_scale=SCALE)
    program(chain)
    first, second = chain.model.job_ids()[:2]
    old, _ = make_work(1, 0)
    new, ref = make_work(2, 0)
    chain.receive(chain.codec.encode_job(old, first))
    chain.hash_step(10_000)
    chain.receive(chain.codec.encode_job(new, second))
    assert chain.job_ids == (first, second)
    found = nonce_replies(chain, hash_until(chain, lambda o: len(o) >= 8 * 11))
    assert {r.job_id for r in found} == {second}
    for reply in found:
        verify(chain, reply, ref)
    chain.receive(chain.codec.encode_job(old, second))  # the same slot, other work
    assert chain.job_ids == (first, second)
    _, old_ref = make_work(1, 0)
    before = len(chain.reported)
    again = nonce_replies(chain, hash_until(chain, lambda o: len(o) >= 8 * 11))
    assert len(chain.reported) - before == len(again)
    for reply in again:
        verify(chain, reply, old_ref)


def test_no_job_no_nonces_and_reset_forgets_jobs() -> None:
    chain = EmulatedChain("BM1397", 1, difficulty_scale=SCALE)
    assert not chain.has_work
    assert chain.hash_step(10_000) == b""
    assert chain.hashes == 0
    work, _ = make_work(1, 4)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    assert chain.has_work
    enumerate_chain(chain)
    chain.reset()
    assert not chain.has_work
    assert chain.addresses == (0,)
    assert chain.job_ids == ()


def test_per_chip_ticket_is_honoured() -> None:
    chain = EmulatedChain("BM1370", 2, difficulty_scale=SCALE)
    enumerate_chain(chain)
    program(chain)
    chain.receive(frames.write_register(Reg.TICKET_MASK, registers.ticket_mask(2**14), 0x80))
    work, _ = make_work(5, 0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    hash_until(chain, lambda _: sum(r.chip == 0 for r in chain.reported) >= 40)
    for record in chain.reported:
        assert int.from_bytes(record.digest, "little") < chain.target(record.chip)
    assert chain.target(1) * 64 == chain.target(0)


# --------------------------------------------------------------------------------------
# midstate continuation
# --------------------------------------------------------------------------------------


def test_midstate_continuation_matches_the_full_hash() -> None:
    header = bytes.fromhex(str(VECTOR["expect"]["header"]))  # type: ignore[index]
    state = sha256_midstate(header[:64])
    assert sha256d_from_midstate(state, header[64:]) == dsha(header)
    assert hashing._finish_python(state, header[64:]) == dsha(header)
    assert dsha(header)[::-1].hex() == VECTOR["expect"]["hash"]  # type: ignore[index]
    with pytest.raises(ValueError, match="16-byte tail"):
        sha256d_from_midstate(state, header[64:79])


# --------------------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------------------


def test_dead_chip_never_reports() -> None:
    chain = EmulatedChain(
        "BM1366", 4, difficulty_scale=SCALE, faults=Faults(dead_chips=frozenset({1}))
    )
    program(chain)
    work, ref = make_work(4, 0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    found = nonce_replies(chain, hash_until(chain, lambda o: len(o) >= 60 * 11))
    assert {r.chip_index for r in found} == {0, 2, 3}
    assert chain.chips[1].hashes == 0
    for reply in found:
        verify(chain, reply, ref)
    # chips still answer commands
    assert len(register_replies(chain, chain.receive(frames.read_register(Reg.CHIP_ID)))) == 4


def test_all_chips_dead_means_no_work() -> None:
    chain = EmulatedChain("BM1397", 2, faults=Faults(dead_chips=frozenset({0, 1})))
    work, _ = make_work(1, 4)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    assert not chain.has_work
    assert chain.hash_step(1000) == b""


def test_duplicate_nonces_repeat_each_reply() -> None:
    chain = EmulatedChain("BM1370", 1, difficulty_scale=SCALE, faults=Faults(duplicate_nonces=2))
    program(chain)
    work, ref = make_work(6, 0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    out = hash_until(chain, lambda o: len(o) >= 3 * 10 * 11)
    found = nonce_replies(chain, out)
    assert len(found) == 3 * chain.faults.nonces_sent
    assert chain.faults.duplicates_sent == 2 * chain.faults.nonces_sent
    for i in range(0, len(found), 3):
        assert found[i] == found[i + 1] == found[i + 2]
        verify(chain, found[i], ref)


def _chip_id_stream(faults: Faults, seed: int, reads: int = 2000) -> tuple[bytes, EmulatedChain]:
    chain = EmulatedChain("BM1366", 4, faults=faults, seed=seed)
    return b"".join(chain.receive(frames.read_register(0)) for _ in range(reads)), chain


def test_corruption_rate_is_roughly_as_requested_and_reproducible() -> None:
    clean, _ = _chip_id_stream(Faults(), 0)
    noisy, chain = _chip_id_stream(Faults(corrupt_rate=0.05, register_replies=True), 42)
    assert len(noisy) == len(clean)
    flipped = sum(a != b for a, b in zip(clean, noisy, strict=True))
    assert flipped == chain.faults.corrupted_bytes
    assert 0.04 < flipped / len(clean) < 0.06
    again, _ = _chip_id_stream(Faults(corrupt_rate=0.05, register_replies=True), 42)
    other, _ = _chip_id_stream(Faults(corrupt_rate=0.05, register_replies=True), 43)
    assert again == noisy != other


def test_faults_spare_register_replies_unless_asked() -> None:
    faults = Faults(corrupt_rate=0.5, drop_rate=0.5)
    clean, _ = _chip_id_stream(Faults(), 0, reads=50)
    spared, chain = _chip_id_stream(faults, 1, reads=50)
    assert spared == clean
    assert chain.faults.injected == dict.fromkeys(chain.faults.injected, 0)


def test_drop_rate_is_roughly_as_requested() -> None:
    dropped, chain = _chip_id_stream(Faults(drop_rate=0.25, register_replies=True), 7)
    sent = len(dropped) // 11
    assert chain.faults.dropped_replies == 8000 - sent
    assert 0.22 < chain.faults.dropped_replies / 8000 < 0.28
    assert len(register_replies(chain, dropped)) == sent


def test_corrupted_nonce_replies_are_caught_by_crc_or_hash() -> None:
    chain = EmulatedChain(
        "BM1366", 2, difficulty_scale=SCALE, faults=Faults(corrupt_rate=0.02), seed=3
    )
    program(chain)
    work, ref = make_work(8, 0)
    chain.receive(chain.codec.encode_job(work, first_job_id(chain)))
    out = hash_until(chain, lambda _: chain.faults.corrupted_bytes >= 30)
    parser = chain.codec.parser()
    parsed = [r for r in [*parser.feed(out), *parser.flush()] if isinstance(r, NonceReply)]
    assert parser.crc_errors > 0
    genuine = {(r.nonce, r.version_bits) for r in chain.reported}
    escaped = [r for r in parsed if (r.nonce, r.version_bits) not in genuine]
    assert len(escaped) <= len(parsed) // 4  # CRC-5 lets about 1 in 32 damaged frames by
    for reply in escaped:  # ... and the hash check is what catches those
        digest = dsha(ref.header(ref.version | reply.version_bits, reply.nonce))
        assert int.from_bytes(digest, "little") >= chain.target()


@pytest.mark.parametrize(
    "kwargs",
    [{"corrupt_rate": 1.5}, {"drop_rate": -0.1}, {"duplicate_nonces": -1}, {"dead_chips": {-1}}],
)
def test_fault_knobs_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must be"):
        Faults(**kwargs)  # type: ignore[arg-type]


def test_chain_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="dead chips"):
        EmulatedChain("BM1366", 2, faults=Faults(dead_chips=frozenset({2})))
    with pytest.raises(ValueError, match="scale"):
        EmulatedChain("BM1366", 2, difficulty_scale=0.0)
    with pytest.raises(ValueError, match="unknown chip model"):
        EmulatedChain("BM1234", 2)
