"""JobBuilder, the share checks and header round trips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.errors import WorkError
from stratum_client.work import (
    HEADER_PREFIX_SIZE,
    Extranonce2Counter,
    Job,
    JobBuilder,
    build_header,
    build_work,
    check_share,
    check_work_nonce,
    header_order_to_prevhash,
    header_prefix,
    header_with_nonce,
    parse_header,
    parse_notify,
    prevhash_to_header_order,
    sha256_midstate,
)
from stratum_client.work.header import swap_words

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
SLUSH: dict[str, Any] = next(j for j in VECTORS["jobs"] if j["name"] == "slush-2023-diff683")
U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
HASH32 = st.binary(min_size=32, max_size=32)


def _job(**changes: Any) -> Job:
    job = parse_notify(
        SLUSH["notify"],
        extranonce1=bytes.fromhex(SLUSH["extranonce1"]),
        extranonce2_size=4,
        difficulty=512.0,
        version_mask=0x1FFFE000,
    )
    return dataclasses.replace(job, **changes)


EN2 = bytes(4)


def test_full_header_work_has_no_midstates() -> None:
    work = build_work(_job(), EN2)
    assert work.midstates == ()
    assert work.merkle_root.hex() == SLUSH["expect"]["merkle_root"]
    assert (work.version, work.ntime, work.key) == (0x20000004, 0x647025B5, ("esp", EN2))


def test_one_midstate_covers_the_first_64_header_bytes() -> None:
    work = build_work(_job(), EN2, midstates=1)
    header = bytes.fromhex(SLUSH["expect"]["header"])
    assert len(work.midstates) == 1
    assert work.midstates[0].version == 0x20000004
    assert work.midstates[0].state == sha256_midstate(header[:64])


def test_four_midstates_roll_within_the_mask() -> None:
    builder = JobBuilder(_job())
    work = builder.build(EN2, midstates=4)
    versions = [m.version for m in work.midstates]
    assert versions == [0x20000004, 0x20002004, 0x20004004, 0x20006004]
    for midstate in work.midstates:
        prefix = builder.header_prefix(work.merkle_root, midstate.version)
        assert midstate.state == sha256_midstate(prefix[:64])
    assert len({m.state for m in work.midstates}) == 4


@pytest.mark.parametrize("mask", [0, 0x00002000])
def test_masks_too_small_for_four_versions_give_one_midstate(mask: int) -> None:
    work = build_work(_job(version_mask=mask), EN2, midstates=4)
    assert [m.version for m in work.midstates] == [0x20000004]


def test_midstates_roll_only_the_mask_bits_the_job_leaves_clear() -> None:
    """Bit 13 is set in the job version: rolling never clears it (chip-side rolling ORs
    bits in, and a pool that ORs the submitted bits could not rebuild a cleared bit)."""
    work = build_work(_job(version=0x20002004), EN2, midstates=4)
    versions = [m.version for m in work.midstates]
    assert versions == [0x20002004, 0x20006004, 0x2000A004, 0x2000E004]
    assert all(v & 0x20002004 == 0x20002004 for v in versions)
    narrow = build_work(_job(version=0x20002004, version_mask=0x00006000), EN2, midstates=4)
    assert [m.version for m in narrow.midstates] == [0x20002004]


def test_version_and_ntime_overrides() -> None:
    work = build_work(_job(), EN2, version=0x20008004, ntime=0x647025B6)
    assert (work.version, work.ntime) == (0x20008004, 0x647025B6)
    with pytest.raises(WorkError, match="outside the mask"):
        build_work(_job(), EN2, version=0x20000005)
    with pytest.raises(WorkError, match="32 bits"):
        build_work(_job(), EN2, ntime=1 << 32)


@pytest.mark.parametrize("count", [2, 3, 5, -1])
def test_midstate_count_must_be_0_1_or_4(count: int) -> None:
    with pytest.raises(WorkError, match="midstates"):
        build_work(_job(), EN2, midstates=count)


def test_extranonce2_must_have_the_job_size() -> None:
    with pytest.raises(WorkError, match="4 bytes"):
        build_work(_job(), bytes(8))


def test_extranonce2_size_zero_job() -> None:
    job = _job(extranonce2_size=0)
    counter = Extranonce2Counter(job.extranonce2_size)
    work = build_work(job, counter.take())
    assert work.extranonce2 == b""
    with pytest.raises(WorkError):
        counter.take()


@pytest.mark.parametrize(
    "changes",
    [
        {"prevhash": bytes(31)},
        {"merkle_branch": (bytes(32), bytes(31))},
        {"version": 1 << 32},
        {"nbits": 0},
        {"difficulty": 0.0},
        {"difficulty": float("nan")},
        {"extranonce2_size": 33},
    ],
)
def test_hand_built_bad_jobs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(WorkError):
        JobBuilder(_job(**changes))


def test_successive_extranonces_give_distinct_roots() -> None:
    builder = JobBuilder(_job())
    counter = Extranonce2Counter(4)
    roots = {builder.build(counter.take()).merkle_root for _ in range(50)}
    assert len(roots) == 50


def test_chip_rolled_nonce_on_the_fast_path() -> None:
    """A BM1366-style rolled version is checked and reported as submit bits."""
    job = _job(version=0x20000000)
    work = build_work(job, EN2)
    rolled = job.version | (0x0001 << 13)
    result = check_work_nonce(work, 0x12345678, rolled)
    assert result.version == rolled
    assert result.version_bits == 0x00002000
    assert parse_header(result.header).version == rolled
    assert result == check_share(job, EN2, job.ntime, 0x12345678, rolled)
    with pytest.raises(WorkError, match="outside the mask"):
        check_work_nonce(work, 0x12345678, job.version | 0x1000)


@pytest.mark.parametrize("nonce", [-1, 1 << 32])
def test_nonce_must_fit_32_bits(nonce: int) -> None:
    with pytest.raises(WorkError, match="32 bits"):
        check_work_nonce(build_work(_job(), EN2), nonce)
    with pytest.raises(WorkError, match="32 bits"):
        check_share(_job(), EN2, 0, nonce)


def test_header_helpers_reject_wrong_sizes() -> None:
    with pytest.raises(WorkError):
        header_prefix(1, bytes(31), bytes(32), 0, 0)
    with pytest.raises(WorkError):
        header_with_nonce(bytes(75), 0)
    with pytest.raises(WorkError):
        parse_header(bytes(79))
    with pytest.raises(WorkError):
        swap_words(bytes(3))


def test_prevhash_word_swap_example() -> None:
    notify = bytes.fromhex(SLUSH["notify"][1])
    assert prevhash_to_header_order(notify)[:12].hex() == "4595850c738349a3fa5274a5"


@given(st.tuples(U32, HASH32, HASH32, U32, U32, U32))
def test_header_round_trips(fields_in: tuple[int, bytes, bytes, int, int, int]) -> None:
    version, prevhash, root, ntime, nbits, nonce = fields_in
    header = build_header(version, prevhash, root, ntime, nbits, nonce)
    assert len(header) == 80
    fields = parse_header(header)
    assert (fields.version, fields.prevhash, fields.merkle_root) == (version, prevhash, root)
    assert (fields.ntime, fields.nbits, fields.nonce) == (ntime, nbits, nonce)
    prefix = header_prefix(version, prevhash_to_header_order(prevhash), root, ntime, nbits)
    assert len(prefix) == HEADER_PREFIX_SIZE
    assert header_with_nonce(prefix, nonce) == header


@given(HASH32)
def test_prevhash_conversion_is_an_involution(prevhash: bytes) -> None:
    assert header_order_to_prevhash(prevhash_to_header_order(prevhash)) == prevhash


@given(st.integers(min_value=0, max_value=0xFFFF), U32)
def test_fast_and_full_checks_agree(counter: int, nonce: int) -> None:
    job = _job()
    en2 = counter.to_bytes(4, "little")
    assert check_work_nonce(build_work(job, en2), nonce) == check_share(job, en2, job.ntime, nonce)


def test_builder_gives_the_same_midstates_on_the_python_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stratum_client.work import builder, midstate

    fast = build_work(_job(), EN2, midstates=4)
    monkeypatch.setattr(builder, "sha256_midstate", midstate.sha256_midstate_python)
    assert build_work(_job(), EN2, midstates=4) == fast
