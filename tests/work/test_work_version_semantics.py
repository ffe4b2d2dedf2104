"""Submitted version bits against each pool's way of rebuilding the header version.

The pools' rebuild rules are written out here, not imported from the code under test:
public-pool XORs the field into the job version, ckpool and DATUM OR it in, and BIP310's
text (miningcore, the SRI translator) replaces the mask bits with it. A submit is right
for a pool when the header that pool rebuilds, packed with ``struct`` and hashed with
``hashlib``, hashes like the header the chip hashed. Job versions with a bit inside the
mask (Bitcoin Core's regtest template 0x30000000, a deployment signalling bit 22) are
where the rules part ways; BIP320 versions such as the 0x20000004 vector are where they
must all agree.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.work import JobBuilder, check_work_nonce, parse_notify, version_bits
from stratum_client.work.versionroll import VersionBitsForm

DATA = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
HEADER_VECTOR: dict[str, Any] = DATA["header_only"][0]
SLUSH: dict[str, Any] = next(j for j in DATA["jobs"] if j["name"] == "slush-2023-diff683")
MASK = 0x1FFFE000
REGTEST = 0x30000000
"""Bitcoin Core's regtest getblocktemplate version: bit 28 (testdummy) inside the mask."""
SIGNALLING = 0x20400000
"""A mainnet-style version signalling bit 22, also inside the mask."""
IN_MASK_JOBS = (REGTEST, SIGNALLING, 0x3FFFE000)
BIP320_JOBS = (0x20000000, int(HEADER_VECTOR["version"], 16), int(SLUSH["notify"][5], 16))
CHIP_COUNTERS = (0, 1, 0x2068, 0x7FFF, 0x8000, 0xFFFF)
"""BM1366 version counters; rolled = job | counter << 13 (the chip ORs them in)."""

Rule = Literal["xor", "or", "replace"]
RULES: tuple[Rule, ...] = ("xor", "or", "replace")
FORMS: tuple[VersionBitsForm, ...] = ("xor", "replace")
U32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


def pool_version(rule: Rule, job_version: int, bits: int, mask: int = MASK) -> int:
    """The version a pool of ``rule``'s kind puts in the header it hashes."""
    if rule == "xor":  # public-pool MiningJob.copyAndUpdateBlock
        return job_version ^ bits
    if rule == "or":  # ckpool stratifier.c, DATUM datum_stratum.c
        return job_version | bits
    return (job_version & ~mask) | (bits & mask)  # BIP310, miningcore, SRI translator


def header(version: int, vector: dict[str, Any] = HEADER_VECTOR) -> bytes:
    """80 header bytes from the vector's fields, with ``version``."""
    return (
        struct.pack("<I", version)
        + bytes.fromhex(vector["prevhash"])
        + bytes.fromhex(vector["merkle_root"])
        + struct.pack(
            "<III", int(vector["ntime"], 16), int(vector["nbits"], 16), int(vector["nonce"], 16)
        )
    )


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def pool_accepts(rule: Rule, job_version: int, rolled: int, bits: int) -> bool:
    """The pool's rebuilt header hashes like the chip's."""
    return dsha(header(pool_version(rule, job_version, bits))) == dsha(header(rolled))


@pytest.mark.parametrize("job_version", BIP320_JOBS, ids=lambda v: f"{v:08x}")
@pytest.mark.parametrize("counter", CHIP_COUNTERS)
def test_without_mask_bits_in_the_job_every_form_suits_every_pool(
    job_version: int, counter: int
) -> None:
    rolled = job_version | counter << 13
    submitted = {form: version_bits(job_version, rolled, MASK, form) for form in FORMS}
    assert submitted["xor"] == submitted["replace"] == counter << 13
    for rule in RULES:
        assert pool_accepts(rule, job_version, rolled, submitted["xor"]), rule


@pytest.mark.parametrize("job_version", IN_MASK_JOBS, ids=lambda v: f"{v:08x}")
@pytest.mark.parametrize("counter", CHIP_COUNTERS)
def test_chip_rolled_versions_on_a_job_with_mask_bits(job_version: int, counter: int) -> None:
    """The XOR form is right on XOR and OR pools, the replace form on replace and OR pools;
    neither on the third kind."""
    rolled = job_version | counter << 13
    xor_bits = version_bits(job_version, rolled, MASK, "xor")
    replace_bits = version_bits(job_version, rolled, MASK, "replace")
    verdicts = {
        (form, rule): pool_accepts(rule, job_version, rolled, bits)
        for form, bits in (("xor", xor_bits), ("replace", replace_bits))
        for rule in RULES
    }
    assert verdicts == {
        ("xor", "xor"): True,
        ("xor", "or"): True,
        ("xor", "replace"): False,
        ("replace", "xor"): False,
        ("replace", "or"): True,
        ("replace", "replace"): True,
    }


def test_the_issue_15_case_by_hand() -> None:
    """Regtest job, chip counter 0: the old submit (rolled & mask) carried bit 28, which
    public-pool's XOR turned off, so it hashed a 0x20000000 header nobody mined."""
    rolled = REGTEST | 0
    assert version_bits(REGTEST, rolled, MASK, "replace") == 0x10000000
    assert pool_version("xor", REGTEST, 0x10000000) == 0x20000000
    assert version_bits(REGTEST, rolled, MASK) == 0
    assert pool_version("xor", REGTEST, 0) == REGTEST


@given(U32, U32)
def test_no_single_value_suits_both_xor_and_replace_pools(job_version: int, extra: int) -> None:
    """An XOR pool needs exactly ``rolled ^ job``; when the job version has a mask bit
    set, a replace pool rebuilds something else from that very value."""
    rolled = job_version | (extra & MASK)
    needed_by_xor = rolled ^ job_version  # the only s with job ^ s == rolled
    replace_ok = pool_version("replace", job_version, needed_by_xor) == rolled
    assert replace_ok == (not job_version & MASK)


@given(U32, U32)
def test_or_pools_take_both_forms_for_versions_that_keep_the_job_bits(
    job_version: int, extra: int
) -> None:
    rolled = job_version | (extra & MASK)
    for form in FORMS:
        assert pool_version("or", job_version, version_bits(job_version, rolled, MASK, form)) == (
            rolled
        )


@pytest.mark.parametrize("job_version", [*IN_MASK_JOBS, *BIP320_JOBS], ids=lambda v: f"{v:08x}")
def test_midstate_versions_keep_the_job_bits(job_version: int) -> None:
    """Software rolling (BM1397 midstates) never clears a job bit, so the XOR form is right
    on OR pools for midstate chips too. A job with every mask bit set leaves nothing to
    roll: one midstate, since repeating a version would find the same shares twice."""
    job = _job(job_version, "xor")
    work = JobBuilder(job).build(bytes(4), midstates=4)
    versions = [m.version for m in work.midstates]
    assert len(set(versions)) == len(versions) == (1 if job_version & MASK == MASK else 4)
    for rolled in versions:
        assert rolled & job_version == job_version
        assert rolled & ~MASK == job_version & ~MASK
        bits = version_bits(job_version, rolled, MASK)
        assert pool_version("or", job_version, bits) == rolled
        assert pool_version("xor", job_version, bits) == rolled


@pytest.mark.parametrize("form", FORMS)
def test_share_check_reports_bits_in_the_jobs_form(form: VersionBitsForm) -> None:
    """check_work_nonce hashes the chip's header and names the bits the pool expects."""
    job = _job(REGTEST, form)
    work = JobBuilder(job).build(bytes(4))
    rolled = work.version | 0x2068 << 13
    result = check_work_nonce(work, 0x0A029ED1, rolled)
    independent = (
        struct.pack("<I", rolled)
        + _header_prevhash(job.prevhash)
        + work.merkle_root
        + struct.pack("<III", job.ntime, job.nbits, 0x0A029ED1)
    )
    assert result.header == independent
    assert result.hash == dsha(independent)
    rule: Rule = "xor" if form == "xor" else "replace"
    assert pool_version(rule, job.version, result.version_bits) == rolled


def _job(version: int, form: VersionBitsForm) -> Any:
    params = list(SLUSH["notify"])
    params[5] = f"{version:08x}"
    return parse_notify(
        params,
        extranonce1=bytes.fromhex(SLUSH["extranonce1"]),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=MASK,
        version_bits_form=form,
    )


def _header_prevhash(notify_prevhash: bytes) -> bytes:
    """Stratum sends the prevhash with each 4-byte word byte-swapped."""
    return b"".join(notify_prevhash[i : i + 4][::-1] for i in range(0, 32, 4))
