"""The daemon against pools that rebuild the version each of the three ways.

The setup is the report's: emulated BM1366 chips (chip-side rolling) plus a BM1397
(midstate rolling), a template version of 0x30000000 (Bitcoin Core's regtest, bit 28
inside the mask), a pool starting at public-pool's 16384 and the daemon suggesting
0.0001. The truths are the pool's own verdicts (it rebuilds and hashes every submit) and
each accepted header rebuilt here: its version must be what that kind of pool makes of
the submitted bits, and its hash must be the one recorded.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from stratum_client.testing.pool import REGTEST_VERSION, LocalPool, SubmitRecord
from stratum_client.work.target import DIFF1_TARGET
from tests.daemon.conftest import ChainSetup

if TYPE_CHECKING:
    from tests.daemon.conftest import RigFactory

CHAINS = (ChainSetup("a", "bm1366", 2), ChainSetup("b", "bm1397", 1))
SUGGEST = 0.0001
INITIAL = 16384.0
"""public-pool's session difficulty before a suggestion."""
MASK = 0x1FFFE000
JUDGED = 40
"""Submits to wait for: enough that both chains' rolled versions show up."""


def _figures(pool: LocalPool) -> str:
    codes = dict(Counter(r.code for r in pool.rejected))
    return f"{len(pool.rejected)} of {len(pool.submits)} shares rejected, by code {codes}"


def _rebuilt_version(rule: str, bits: int) -> int:
    if rule == "xor":
        return REGTEST_VERSION ^ bits
    if rule == "or":
        return REGTEST_VERSION | bits
    return (REGTEST_VERSION & ~MASK) | (bits & MASK)


def _check_accepted(record: SubmitRecord, rule: str, difficulty: float) -> int:
    """The header the pool hashed, independently: its version and hash; returns the
    version."""
    header = bytes.fromhex(record.header)
    (version,) = struct.unpack_from("<I", header)
    assert version == _rebuilt_version(rule, int(record.version_bits or "0", 16))
    assert version & REGTEST_VERSION == REGTEST_VERSION  # rolling kept the job's bits
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert digest[::-1].hex() == record.hash
    assert DIFF1_TARGET / int.from_bytes(digest, "little") >= difficulty
    return int(version)


@pytest.mark.parametrize(
    ("pool_options", "form"),
    [
        ({"strict": True}, ""),  # public-pool: XOR, the default form
        ({"version": REGTEST_VERSION, "version_rule": "or"}, ""),  # ckpool, DATUM
        ({"version": REGTEST_VERSION, "version_rule": "replace"}, "replace"),  # BIP310
    ],
    ids=["xor-pool", "or-pool", "replace-pool"],
)
async def test_every_share_on_a_regtest_template_is_accepted(
    mining_rig: RigFactory, pool_options: dict[str, object], form: str
) -> None:
    rule = str(pool_options.get("version_rule", "xor"))
    keys = f"suggest_difficulty = {SUGGEST}\n"
    if form:
        keys += f'version_bits_form = "{form}"\n'
    # only the strict pool lets the suggestion replace its difficulty
    start = INITIAL if pool_options.get("strict") else SUGGEST
    pool = LocalPool(difficulty=start, **pool_options)  # type: ignore[arg-type]
    async with pool, mining_rig([pool], pool_options=[keys], chains=CHAINS) as rig:
        # 40 shares take ~20 s on an idle 2-core machine; the deadline leaves room for a
        # loaded one (it is a deadline, not a measurement)
        judged = lambda: len(pool.submits) >= JUDGED  # noqa: E731
        await rig.wait_until(f"{JUDGED} shares judged", judged, limit=150.0)
        await rig.wait_until("answers in", lambda: rig.dispatch().in_flight == 0)
        assert await rig.stop() == 0
    print(_figures(pool))
    assert pool.rejected == [], _figures(pool)
    versions = {_check_accepted(r, rule, SUGGEST) for r in pool.accepted}
    assert len(versions) > 1, "the chips rolled versions"
    snap = rig.dispatch()
    assert snap.accepted == len(pool.accepted)
    assert snap.balanced
    by_device = {d.name: d.total.shares.accepted for d in snap.devices}
    assert all(n > 0 for n in by_device.values()), by_device


async def test_the_replace_form_on_a_public_pool_is_refused(mining_rig: RigFactory) -> None:
    """The option is a real choice: the BIP310 form sends bit 28, public-pool flips it."""
    pool = LocalPool(strict=True, difficulty=INITIAL)
    keys = f'suggest_difficulty = {SUGGEST}\nversion_bits_form = "replace"\n'
    async with pool, mining_rig([pool], pool_options=[keys], chains=CHAINS[:1]) as rig:
        await rig.wait_until("10 shares judged", lambda: len(pool.submits) >= 10)
        assert await rig.stop() == 0
    assert {r.code for r in pool.rejected} == {23}, _figures(pool)
    assert len(pool.rejected) >= len(pool.submits) - 1, _figures(pool)


async def test_the_daemon_follows_vardiff_and_difficulty_changes(mining_rig: RigFactory) -> None:
    """A vardiff step (set_difficulty, then a clean job) and a later rise judged without
    grace: once the daemon has seen a change, every share it sends meets it, and a reject
    may only be a share that was on the wire when the difficulty rose."""
    pool = LocalPool(strict=True, difficulty=INITIAL, vardiff_share_interval=1e-3)
    keys = f"suggest_difficulty = {SUGGEST}\n"
    async with pool, mining_rig([pool], pool_options=[keys], chains=CHAINS) as rig:
        await rig.wait_until("10 accepted", lambda: len(pool.accepted) >= 10)
        await pool.vardiff_now()  # a share every millisecond wanted: down to the floor
        [(_session, old, low)] = pool.vardiff_steps
        assert (old, low) == (SUGGEST, 0.00001)
        await rig.wait_until("step seen", lambda: rig.dispatch().current_difficulty == low)
        mark = len(pool.submits) + rig.dispatch().in_flight
        await rig.wait_until("5 shares after it", lambda: len(pool.submits) >= mark + 5)
        high = SUGGEST * 4
        await pool.set_difficulty(high)
        await rig.wait_until("rise seen", lambda: rig.dispatch().current_difficulty == high)
        rise = len(pool.submits) + rig.dispatch().in_flight
        await rig.wait_until("3 shares after it", lambda: len(pool.submits) >= rise + 3)
        await rig.wait_until("answers in", lambda: rig.dispatch().in_flight == 0)
        assert await rig.stop() == 0
    print(_figures(pool))
    for record in pool.submits[rise:]:
        assert record.accepted, _figures(pool)
        _check_accepted(record, "xor", high)
    for record in pool.rejected:  # on the wire when the difficulty rose: met the old one
        assert record.code == 23
        assert mark <= pool.submits.index(record) < rise
        digest = bytes.fromhex(record.hash)[::-1]
        assert DIFF1_TARGET / int.from_bytes(digest, "little") >= low
