"""Whether a block candidate whose hash misses the pool's share target is submitted.

A hash can meet the network target and miss the pool's only where the network difficulty
is below the pool difficulty: regtest (difficulty 4.7e-10), testnet or signet with a high
pool difficulty; never on mainnet, whose difficulty is far above any pool's. Pools differ
on such a submit. ckpool tests every submit for a block "regardless of share status"
(``submission_diff`` calls ``test_blocksolve`` before the share is judged); miningcore
(``isBlockCandidate`` exempts it from the low-difficulty check) and node-stratum-pool
(``job.target.ge(headerBigNum)`` comes first) do the same: they take the block.
public-pool compares the share with the session difficulty first and refuses it with
``[23, "Difficulty too low"]`` without looking at the block, so the submit only earns a
reject. Submitting is the default, because it can win a block and costs at most one
reject; ``submit_block_candidates_below_difficulty = false`` holds such candidates back
for pools that judge difficulty first. A held-back candidate is counted as lost with
:data:`HELD_BELOW_DIFFICULTY` as its reason, so no candidate vanishes unaccounted.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HELD_BELOW_DIFFICULTY", "hold_back_reason"]

HELD_BELOW_DIFFICULTY: Final = (
    "block candidate below the pool difficulty held back "
    "(submit_block_candidates_below_difficulty = false)"
)


def hold_back_reason(*, block: bool, meets_pool: bool, submit_below: bool) -> str | None:
    """Why a found share is held back instead of submitted, or None to submit it.

    ``block``: the hash meets the network target; ``meets_pool``: it meets the pool's
    share target in force; ``submit_below``: the pool's
    ``submit_block_candidates_below_difficulty``. Only a block candidate below the pool
    difficulty, on a pool that judges difficulty first, is held back.
    """
    if block and not meets_pool and not submit_below:
        return HELD_BELOW_DIFFICULTY
    return None
