"""The local pool on a regtest target: which comes first, the block or the difficulty.

The truths are computed here, not by the pool: a header's hash against regtest's nbits
0x207fffff (target 0x7fffff × 2**232) and against the session difficulty. public-pool
(strict mode) refuses a block below the session difficulty with code 23; a pool that
checks the block first (ckpool, miningcore) takes it.
"""

from __future__ import annotations

import hashlib

import pytest

from stratum_client.testing.pool import REGTEST_NBITS, BlockRule, LocalPool
from stratum_client.work.target import DIFF1_TARGET
from tests.testing.test_local_pool import connected, solve_rolled

REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))
SESSION = 2.0**-8
"""Far above what a first regtest nonce is worth (about 2**-31 on average)."""


def _value(header: bytes) -> int:
    return int.from_bytes(hashlib.sha256(hashlib.sha256(header).digest()).digest(), "little")


@pytest.mark.parametrize(
    ("strict", "rule", "accepted"),
    [(True, None, False), (True, "block", True), (False, None, True), (False, "difficulty", False)],
    ids=["public-pool", "strict-block-first", "lenient", "lenient-difficulty-first"],
)
async def test_a_block_below_the_session_difficulty(
    strict: bool, rule: BlockRule | None, accepted: bool
) -> None:
    pool = LocalPool(strict=strict, difficulty=SESSION, nbits=REGTEST_NBITS, block_rule=rule)
    async with pool, connected(pool) as (miner, en1, notify):
        assert notify[6] == "207fffff"
        version = int(notify[5], 16)
        nonce, header = solve_rolled(notify, en1, bytes(4), version, DIFF1_TARGET / REGTEST_TARGET)
        assert _value(header) <= REGTEST_TARGET  # a regtest block
        assert DIFF1_TARGET / _value(header) < SESSION  # but not a share at this difficulty
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
        reply = await miner.call("mining.submit", fields)
    [record] = pool.submits
    assert record.block
    assert record.header == header.hex()
    if accepted:
        assert (reply["result"], reply["error"]) == (True, None)
        assert pool.blocks == [record]
    else:
        assert reply["error"][0] == 23
        assert (record.code, pool.blocks) == (23, [])
        if strict:
            assert reply["error"][1] == "Difficulty too low"


async def test_a_share_on_the_mainnet_target_is_no_block() -> None:
    easy = 2.0**-20
    async with LocalPool(difficulty=easy) as pool, connected(pool) as (miner, en1, notify):
        assert notify[6] == "1705ae3a"
        nonce, _ = solve_rolled(notify, en1, bytes(4), int(notify[5], 16), easy)
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
        assert (await miner.call("mining.submit", fields))["result"] is True
    assert [r.block for r in pool.submits] == [False]
    assert pool.blocks == []
