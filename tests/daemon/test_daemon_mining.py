"""The daemon mining for real: emulated BM1366 and BM1397 chains against a LocalPool.

The pool validates every submit by rebuilding and hashing the header, and the emulator
keeps a record of every nonce it reported; those two are the truths checked here, not
the daemon's own counters (which are checked *against* them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratum_client.daemon.dispatcher import LOST_CLEAN_JOBS, LOST_STALE
from stratum_client.testing.pool import LocalPool
from stratum_client.work.target import share_difficulty

if TYPE_CHECKING:
    from tests.daemon.conftest import Rig, RigFactory


def _accepted_by_device(rig: Rig) -> dict[str, int]:
    return {d.name: d.total.shares.accepted for d in rig.dispatch().devices}


async def test_every_submitted_share_is_accepted(
    mining_rig: RigFactory, local_pool: LocalPool
) -> None:
    async with mining_rig([local_pool]) as rig:
        await rig.wait_until(
            "shares from both chains",
            lambda: all(n >= 3 for n in _accepted_by_device(rig).values()),
        )
        assert await rig.stop() == 0
    snap = rig.dispatch()
    assert local_pool.rejected == []
    assert snap.accepted == len(local_pool.accepted) == len(local_pool.submits)
    assert snap.rejected == snap.lost == snap.pending == snap.in_flight == 0
    assert snap.balanced
    # Each accepted share is a hash the pool recomputed; the emulator reported it too.
    reported = {r.digest for c in rig.chains.values() for r in c.reported}
    assert len(reported) >= snap.accepted
    assert snap.untracked_outcomes == 0


async def test_clean_jobs_flushes_chips_and_no_stale_share_is_submitted(
    mining_rig: RigFactory, local_pool: LocalPool
) -> None:
    async with mining_rig([local_pool]) as rig:
        await rig.wait_for_shares(local_pool, 3)
        await local_pool.broadcast_new_job()
        await rig.wait_until("two jobs held", lambda: rig.dispatch().job_count == 2)
        before = _accepted_by_device(rig)
        old_jobs = {s.job_id for s in local_pool.submits} | {"1", "2"}
        block = await local_pool.broadcast_new_block()
        await rig.wait_until("old jobs dropped", lambda: rig.dispatch().job_count == 1)
        # Submits sent before the notify was seen arrive first (one TCP stream, in order);
        # those may be stale, which the daemon could not know yet.
        mark = len(local_pool.submits) + rig.dispatch().in_flight
        await rig.wait_until(
            "both chains mine the new block",
            lambda: all(n > before[k] + 1 for k, n in _accepted_by_device(rig).items()),
        )
        await rig.wait_until("answers in", lambda: rig.dispatch().in_flight == 0)
        after = local_pool.submits[mark:]
        assert await rig.stop() == 0
    snap = rig.dispatch()
    # Once the daemon knew of the block, nothing for the old jobs reached the pool...
    assert [s for s in after if s.job_id in old_jobs] == []
    assert {s.job_id for s in after} == {block.job_id}
    # ...and a share that crossed the notify on the wire is a reject counted as stale.
    assert all(r.reason == "job not found" for r in local_pool.rejected)
    assert snap.rejected == snap.total.shares.stale == len(local_pool.rejected)
    # Stale nonces after the block are counted; those that met the pool difficulty are
    # shares lost with their reason, never dropped silently.
    lost_stale = snap.lost_by_reason.get(LOST_STALE, 0) + snap.lost_by_reason.get(
        LOST_CLEAN_JOBS, 0
    )
    assert lost_stale <= snap.total.nonces.stale
    assert snap.balanced
    assert snap.found_shares == snap.accepted + snap.rejected + snap.lost


async def test_set_difficulty_applies_to_shares_checked_after_it_arrives(
    mining_rig: RigFactory, local_pool: LocalPool
) -> None:
    old = local_pool.difficulty
    new = old * 4
    async with mining_rig([local_pool]) as rig:
        await rig.wait_for_shares(local_pool, 3)
        below_before = rig.dispatch().total.nonces.below_difficulty
        await local_pool.set_difficulty(new)  # same job: no notify follows
        await rig.wait_until("difficulty seen", lambda: rig.dispatch().current_difficulty == new)
        # Submits sent before the change was seen arrive first (one TCP stream, in order).
        mark = len(local_pool.submits) + rig.dispatch().in_flight
        await rig.wait_until(
            "shares at the new difficulty", lambda: len(local_pool.submits) >= mark + 3
        )
        later = local_pool.submits[mark:]
        below_after = rig.dispatch().total.nonces.below_difficulty
        assert await rig.stop() == 0
    assert [s for s in later if s.difficulty < new] == []
    assert local_pool.rejected == []
    # Nonces between the old and the new difficulty were held back, not submitted.
    assert below_after > below_before
    reported = [share_difficulty(r.digest) for c in rig.chains.values() for r in c.reported]
    assert any(old <= d < new for d in reported)


async def test_set_extranonce_rebuilds_work_and_shares_are_accepted(
    mining_rig: RigFactory, local_pool: LocalPool
) -> None:
    async with mining_rig([local_pool]) as rig:
        # A job without clean_jobs is newest, so the pool's repeat of it after the new
        # extranonce1 is an ordinary (non-clean) notify under a job id already held.
        job = await local_pool.broadcast_new_job()
        await rig.wait_until(
            "shares for the new job",
            lambda: any(s.job_id == job.job_id for s in local_pool.accepted),
        )
        first = local_pool.accepted[0].extranonce1
        await local_pool.set_extranonce()
        await rig.wait_until(
            "new extranonce1 seen",
            lambda: rig.dispatch().pools[0].extranonce1 != bytes.fromhex(first),
        )
        # Shares sent before the change was seen reach the pool first; the pool hashes
        # them with the new extranonce1, so they may be rejected (and are counted).
        mark = len(local_pool.submits) + rig.dispatch().in_flight
        await rig.wait_until(
            "shares with the new extranonce1",
            lambda: sum(s.extranonce1 != first for s in local_pool.accepted) >= 4,
        )
        await rig.wait_until("answers in", lambda: rig.dispatch().in_flight == 0)
        later = local_pool.submits[mark:]
        assert await rig.stop() == 0
    snap = rig.dispatch()
    # Nothing was refused locally as "different work" (the session kept the job
    # the pool re-announced), and nothing sent after the change was rejected.
    assert [s for s in later if not s.accepted] == []
    assert {s.extranonce1 for s in later} != {first}
    assert snap.rejected == len(local_pool.rejected)
    assert all(r.job_id in {job.job_id, "1"} for r in local_pool.rejected)
    assert "other" not in snap.pools[0].shares.rejected_by_reason
    assert snap.balanced
