"""Every vector in tests/data/stratum_vectors.json, through the project's code.

Each positive check has a negative control: one flipped byte must change the result, so a
test that compares nothing (or compares a value with itself) cannot pass by accident.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from stratum_client.errors import WorkError
from stratum_client.work import (
    Job,
    JobBuilder,
    apply_version_bits,
    build_header,
    check_share,
    check_work_nonce,
    coinbase_txid,
    display_hex,
    dsha256,
    merkle_root,
    parse_notify,
    share_difficulty,
    version_bits,
)

DATA = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
JOBS: list[dict[str, Any]] = DATA["jobs"]
HEADER_ONLY: list[dict[str, Any]] = DATA["header_only"]
MERKLE_ONLY: list[dict[str, Any]] = DATA["merkle_only"]


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _job(vector: dict[str, Any], **changes: Any) -> Job:
    mask = vector["version_mask"]
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(vector["extranonce1"]),
        extranonce2_size=len(bytes.fromhex(vector["extranonce2"])),
        difficulty=float(vector.get("pool_difficulty", 1)),
        version_mask=int(mask, 16) if mask else 0,
    )
    return dataclasses.replace(job, **changes)


def _submit(vector: dict[str, Any], job: Job) -> tuple[bytes, int, int, int]:
    submit = vector["submit"]
    bits = int(submit["version_bits"] or "0", 16)
    version = apply_version_bits(job.version, bits, job.version_mask)
    en2 = bytes.fromhex(vector["extranonce2"])
    return en2, int(submit["ntime"], 16), int(submit["nonce"], 16), version


@pytest.fixture(params=JOBS, ids=[j["name"] for j in JOBS])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


def test_coinbase_txid_is_in_display_order(vector: dict[str, Any]) -> None:
    builder = JobBuilder(_job(vector))
    coinbase = builder.coinbase(bytes.fromhex(vector["extranonce2"]))
    assert display_hex(coinbase_txid(coinbase)) == vector["expect"]["coinbase_txid"]
    assert display_hex(coinbase_txid(_flip(coinbase))) != vector["expect"]["coinbase_txid"]


def test_merkle_root(vector: dict[str, Any]) -> None:
    en2 = bytes.fromhex(vector["extranonce2"])
    assert JobBuilder(_job(vector)).merkle_root(en2).hex() == vector["expect"]["merkle_root"]
    assert JobBuilder(_job(vector)).merkle_root(_flip(en2)).hex() != vector["expect"]["merkle_root"]


def test_merkle_root_via_the_plain_function(vector: dict[str, Any]) -> None:
    job = _job(vector)
    coinbase = JobBuilder(job).coinbase(bytes.fromhex(vector["extranonce2"]))
    root = merkle_root(dsha256(coinbase), job.merkle_branch)
    assert root.hex() == vector["expect"]["merkle_root"]


def test_header_hash_and_difficulty(vector: dict[str, Any]) -> None:
    job = _job(vector)
    result = check_share(job, *_submit(vector, job))
    expect = vector["expect"]
    assert result.header.hex() == expect["header"]
    assert result.hash_hex == expect["hash"]
    assert result.share_difficulty == pytest.approx(expect["share_difficulty"], rel=1e-12)


def test_flipped_nonce_changes_everything(vector: dict[str, Any]) -> None:
    job = _job(vector)
    en2, ntime, nonce, version = _submit(vector, job)
    result = check_share(job, en2, ntime, nonce ^ 1, version)
    expect = vector["expect"]
    assert result.header.hex() != expect["header"]
    assert result.hash_hex != expect["hash"]
    assert result.share_difficulty != pytest.approx(expect["share_difficulty"], rel=1e-6)


def test_flipped_prevhash_changes_the_header(vector: dict[str, Any]) -> None:
    job = _job(vector)
    result = check_share(_job(vector, prevhash=_flip(job.prevhash, 5)), *_submit(vector, job))
    assert result.hash_hex != vector["expect"]["hash"]


def test_fast_path_agrees_with_the_full_check(vector: dict[str, Any]) -> None:
    job = _job(vector)
    en2, ntime, nonce, version = _submit(vector, job)
    work = JobBuilder(job).build(en2, ntime=ntime)
    fast = check_work_nonce(work, nonce, version)
    assert fast == check_share(job, en2, ntime, nonce, version)
    assert fast.header.hex() == vector["expect"]["header"]
    assert check_work_nonce(work, nonce ^ 0x80000000, version).header != fast.header


def test_genesis_is_a_block() -> None:
    genesis = next(j for j in JOBS if j["name"] == "genesis")
    job = _job(genesis)
    assert check_share(job, *_submit(genesis, job)).meets_network_target
    en2, ntime, nonce, version = _submit(genesis, job)
    assert not check_share(job, en2, ntime, nonce + 1, version).meets_network_target


def test_real_pool_shares_are_not_blocks() -> None:
    for vector in JOBS[1:]:
        job = _job(vector)
        assert not check_share(job, *_submit(vector, job)).meets_network_target


def test_rolled_testnet_share_meets_its_pool_difficulty() -> None:
    vector = next(j for j in JOBS if j["name"] == "testnet-bitaxe-version-rolled")
    job = _job(vector)
    en2, ntime, nonce, version = _submit(vector, job)
    assert version == 0x20002000
    result = check_share(job, en2, ntime, nonce, version)
    assert result.meets_pool_difficulty
    assert job.difficulty == 512
    assert f"{result.version_bits:08x}" == vector["submit"]["version_bits"]
    assert version_bits(job.version, version, job.version_mask) == 0x2000
    # negative control: the unrolled version hashes to nothing useful
    assert not check_share(job, en2, ntime, nonce, job.version).meets_pool_difficulty


def test_rolled_version_without_a_mask_is_refused() -> None:
    vector = next(j for j in JOBS if j["name"] == "testnet-bitaxe-version-rolled")
    job = _job(vector, version_mask=0)
    en2, ntime, nonce, _ = _submit(vector, _job(vector))
    with pytest.raises(WorkError, match="outside the mask"):
        check_share(job, en2, ntime, nonce, 0x20002000)


def test_diff683_share_against_higher_pool_difficulty() -> None:
    vector = next(j for j in JOBS if j["name"] == "slush-2023-diff683")
    job = _job(vector)
    assert check_share(_job(vector, difficulty=683.0), *_submit(vector, job)).meets_pool_difficulty
    assert not check_share(
        _job(vector, difficulty=684.0), *_submit(vector, job)
    ).meets_pool_difficulty


@pytest.mark.parametrize("vector", HEADER_ONLY, ids=[v["name"] for v in HEADER_ONLY])
def test_header_only_vectors(vector: dict[str, Any]) -> None:
    version, ntime, nbits, nonce = (
        int(vector[k], 16) for k in ("version", "ntime", "nbits", "nonce")
    )
    prevhash, merkle_root = (bytes.fromhex(vector[k]) for k in ("prevhash", "merkle_root"))
    header = build_header(version, prevhash, merkle_root, ntime, nbits, nonce)
    expect = vector["expect"]
    assert header.hex() == expect["header"]
    assert display_hex(dsha256(header)) == expect["hash"]
    assert share_difficulty(dsha256(header)) == pytest.approx(expect["share_difficulty"])
    flipped = _flip(merkle_root, 31)
    assert build_header(version, prevhash, flipped, ntime, nbits, nonce).hex() != expect["header"]


@pytest.mark.parametrize("vector", MERKLE_ONLY, ids=[v["name"] for v in MERKLE_ONLY])
def test_merkle_only_vectors(vector: dict[str, Any]) -> None:
    coinbase = bytes.fromhex(
        vector["coinb1"] + vector["extranonce1"] + vector["extranonce2"] + vector["coinb2"]
    )
    branch = [bytes.fromhex(b) for b in vector["merkle_branch"]]
    root = merkle_root(dsha256(coinbase), branch)
    assert root.hex() == vector["expect"]["merkle_root"]
    # negative control: reversing a branch entry (a classic mistake) gives another root
    reversed_first = [branch[0][::-1], *branch[1:]]
    assert merkle_root(dsha256(coinbase), reversed_first).hex() != vector["expect"]["merkle_root"]
