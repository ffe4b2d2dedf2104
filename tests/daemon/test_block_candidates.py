"""Block candidates that miss the pool difficulty: submitted or held back, per pool.

The block is the genesis block (its real nonce, hashed for real): it meets its own nbits,
and its hash (difficulty 2536.43) is below a pool difficulty of 1e6. With the pool's
``submit_block_candidates_below_difficulty`` left true it is submitted, as the existing
genesis test says; with false it is held back, logged and counted as lost with the reason,
so the share ledger still balances.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from stratum_client.daemon.dispatcher import Dispatcher
from stratum_client.pool.types import PoolUp
from stratum_client.work.candidates import HELD_BELOW_DIFFICULTY, hold_back_reason
from stratum_client.work.job import Job
from tests.daemon.test_dispatcher import (
    CHAINS,
    GENESIS,
    TESTNET,
    make_job,
    new_job,
    real_nonce,
    set_difficulty,
    submitted,
)


@pytest.mark.parametrize(
    ("block", "meets_pool", "submit_below", "held"),
    [
        (True, False, False, True),
        (True, False, True, False),
        (True, True, False, False),
        (False, False, False, False),  # not a block: the share path decides, not this
        (False, True, False, False),
    ],
)
def test_only_a_weak_block_on_a_difficulty_first_pool_is_held(
    block: bool, meets_pool: bool, submit_below: bool, held: bool
) -> None:
    reason = hold_back_reason(block=block, meets_pool=meets_pool, submit_below=submit_below)
    assert reason == (HELD_BELOW_DIFFICULTY if held else None)


def _mining(difficulty: float, submit_below: bool) -> tuple[Dispatcher, Job]:
    job = make_job(GENESIS, difficulty=1.0)
    dispatcher = Dispatcher(CHAINS)
    dispatcher.on_manager_event(new_job(job), 0.0)
    dispatcher.on_manager_event(set_difficulty(difficulty), 0.0)
    event = PoolUp(0, "pool0", job.extranonce1, 4, False, 0.0, submit_below)
    dispatcher.on_manager_event(event, 0.0)
    return dispatcher, job


def test_a_block_below_the_pool_difficulty_is_held_back_and_accounted() -> None:
    dispatcher, job = _mining(1e6, submit_below=False)
    with capture_logs() as logs:
        assert dispatcher.on_nonce("a", real_nonce(GENESIS, job), 1.0) == []
    [held] = [e for e in logs if e["event"] == "block candidate held back"]
    assert held["reason"] == HELD_BELOW_DIFFICULTY
    # the genesis hash 000000000019d668…e26f is at difficulty 0xffff·2^208 / hash
    assert held["difficulty"] == pytest.approx(2536.4263, abs=1e-4)
    assert any(e["event"] == "block candidate found" for e in logs)
    snap = dispatcher.snapshot(1.0)
    assert (snap.blocks_found, snap.found_shares, snap.lost) == (1, 1, 1)
    assert dict(snap.lost_by_reason) == {HELD_BELOW_DIFFICULTY: 1}
    assert dict(snap.pools[0].shares.lost_by_reason) == {HELD_BELOW_DIFFICULTY: 1}
    assert (snap.pending, snap.in_flight) == (0, 0)
    assert snap.balanced


def test_the_same_block_is_submitted_when_the_pool_checks_blocks_first() -> None:
    dispatcher, job = _mining(1e6, submit_below=True)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(GENESIS, job), 1.0))
    assert share.block
    assert dispatcher.snapshot(1.0).lost == 0


def test_a_block_that_meets_the_pool_difficulty_is_always_submitted() -> None:
    dispatcher, job = _mining(2048.0, submit_below=False)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(GENESIS, job), 1.0))
    assert share.block
    assert dispatcher.snapshot(1.0).lost == 0


def test_a_share_that_is_no_block_is_untouched_by_the_setting() -> None:
    job = make_job(TESTNET)
    dispatcher = Dispatcher(CHAINS)
    dispatcher.on_manager_event(new_job(job), 0.0)
    dispatcher.on_manager_event(set_difficulty(512.0), 0.0)
    dispatcher.on_manager_event(PoolUp(0, "p", job.extranonce1, 4, False, 0.0, False), 0.0)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0))
    assert not share.block
