"""The daemon on a regtest target against pools that check difficulty or block first.

On regtest's nbits nearly every nonce the emulated chips report is a block candidate and
about half of them miss the pool difficulty (2**-15 against a ticket of 2**-16): the
case public-pool refused 147 times in the real-peer run (docs/pools.md). The truths are
the pool's own verdicts and its flag for each hashed header meeting the network target.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from stratum_client.testing.pool import REGTEST_NBITS, BlockRule, LocalPool
from stratum_client.work.candidates import HELD_BELOW_DIFFICULTY
from tests.daemon.conftest import POOL_DIFFICULTY, ChainSetup

if TYPE_CHECKING:
    from tests.daemon.conftest import RigFactory

CHAINS = (ChainSetup("a", "bm1366", 2),)
CANDIDATES = 30


@pytest.mark.parametrize(
    ("rule", "submit_below"),
    [("difficulty", False), ("block", True), ("difficulty", True)],
    ids=["public-pool-held-back", "block-first-submitted", "public-pool-submitted"],
)
async def test_block_candidates_below_the_pool_difficulty(
    mining_rig: RigFactory, rule: BlockRule, submit_below: bool
) -> None:
    pool = LocalPool(strict=True, difficulty=POOL_DIFFICULTY, nbits=REGTEST_NBITS, block_rule=rule)
    keys = "" if submit_below else "submit_block_candidates_below_difficulty = false\n"
    async with pool, mining_rig([pool], pool_options=[keys], chains=CHAINS) as rig:
        found = lambda: rig.dispatch().blocks_found >= CANDIDATES  # noqa: E731
        await rig.wait_until(f"{CANDIDATES} block candidates", found, limit=120.0)
        rig.freeze_chains()
        await rig.wait_until("answers in", lambda: rig.dispatch().in_flight == 0)
        assert await rig.stop() == 0
    snap = rig.dispatch()
    codes = Counter(r.code for r in pool.rejected)
    held = snap.lost_by_reason.get(HELD_BELOW_DIFFICULTY, 0)
    weak_blocks = [r for r in pool.blocks if r.difficulty < r.required]
    print(f"{snap.blocks_found} candidates, {len(pool.blocks)} blocks, {held} held, {codes}")
    assert all(r.block for r in pool.submits)  # every submit was a regtest block
    assert snap.balanced
    # every candidate is a block the pool took, a reject by code, or held with the reason
    assert snap.blocks_found == len(pool.blocks) + len(pool.rejected) + snap.lost
    assert snap.lost == held
    if not submit_below:
        assert held > 0
        assert codes == Counter()
        assert weak_blocks == []
    elif rule == "block":
        assert (held, codes) == (0, Counter())
        assert weak_blocks  # taken although below the session difficulty
    else:
        assert held == 0
        assert set(codes) == {23}  # the real-peer figure, reproduced
