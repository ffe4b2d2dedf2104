"""Shares lost when a resumed session re-announces the job already being mined.

Found by the soak run (``bench/soak.py --trace-memory`` lost 6 shares as "stale: job
invalidated" across 14 half-open and reset faults). After a reconnect with session
resume, the pool re-sends its current job with ``clean_jobs`` set, as pools do on every
new connection. Same job id, same prevhash, same extranonce1: the pool still accepts
shares for it. The dispatcher nevertheless retires the job (the fresh session's Job
object differs from the old one in ``received_at``), so every nonce the chips report for
work already on them is classified stale and lost. (With the same ``received_at`` the
nonce is a share: the job equality in ``Dispatcher._live_entry`` is what fails.)

This replays that sequence against the real Dispatcher, deterministically, with a
recorded share (the test vector's nonce really meets difficulty 512 on this job).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chaos_rig import PoolEntry, run_rig
from hostile_pool import HostileProxy

from stratum_client.asic.base import FoundNonce
from stratum_client.daemon.dispatcher import ChainSpec, Dispatcher, SubmitShare
from stratum_client.pool.types import PoolDown, PoolUp, SessionEvent
from stratum_client.protocol import events as ev
from stratum_client.testing.pool import LocalPool
from stratum_client.work import JobBuilder, apply_version_bits, check_work_nonce, parse_notify
from stratum_client.work.job import Job

pytestmark = pytest.mark.chaos

DATA = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
VECTOR: dict[str, Any] = next(
    v for v in DATA["jobs"] if v["name"] == "testnet-bitaxe-version-rolled"
)
EN1 = bytes.fromhex(VECTOR["extranonce1"])


def announced(received_at: float) -> Job:
    """The vector's notify as a session parses it, with clean_jobs set."""
    params = list(VECTOR["notify"])
    params[-1] = True
    return parse_notify(
        params,
        extranonce1=EN1,
        extranonce2_size=len(bytes.fromhex(VECTOR["extranonce2"])),
        difficulty=512.0,
        version_mask=int(VECTOR["version_mask"], 16),
        received_at=received_at,
    )


def recorded_nonce(job: Job) -> FoundNonce:
    submit = VECTOR["submit"]
    version = apply_version_bits(job.version, int(submit["version_bits"], 16), job.version_mask)
    work = JobBuilder(job).build(bytes.fromhex(VECTOR["extranonce2"]))
    result = check_work_nonce(work, int(submit["nonce"], 16), version)
    return FoundNonce(work, result.nonce, version, 0, 0, result.hash, result.share_difficulty, 20.0)


def test_nonce_for_a_job_the_resumed_session_reannounced_is_still_a_share() -> None:
    dispatcher = Dispatcher([ChainSpec("a", midstates=0, chips=2, ticket_difficulty=256.0)])
    first = announced(received_at=1.0)
    dispatcher.on_manager_event(SessionEvent(0, ev.NewJob(first, True)), 1.0)
    dispatcher.on_manager_event(SessionEvent(0, ev.DifficultyChanged(512.0, 1.0, 1.0)), 1.0)
    dispatcher.on_manager_event(PoolUp(0, "main", EN1, 4, False, 1.0), 1.0)
    nonce = recorded_nonce(first)  # work already on the chips when the connection drops
    dispatcher.on_manager_event(PoolDown(0, "main", "connection reset", 10.0), 10.0)
    dispatcher.on_manager_event(PoolUp(0, "main", EN1, 4, True, 11.0), 11.0)
    again = announced(received_at=11.0)
    dispatcher.on_manager_event(SessionEvent(0, ev.NewJob(again, True)), 11.0)
    actions = dispatcher.on_nonce("a", nonce, 12.0)
    snap = dispatcher.snapshot(12.0)
    assert snap.total.nonces.stale == 0, dict(snap.lost_by_reason)
    assert [type(a) for a in actions] == [SubmitShare]
    assert snap.total.nonces.share == 1


async def test_shares_found_while_the_pool_was_half_open_are_credited_after_the_resume(
    tmp_path: Path,
) -> None:
    """The soak lost shares here: while the pool was silent it moved on to a new job of
    the same block, and the resumed session's first notify announced that job with
    ``clean_jobs`` set. The shares found meanwhile on the job being mined were voided,
    although the pool still credits them. The resumed session now keeps that job."""
    async with (
        LocalPool(strict=True, difficulty=2.0**-14, job_interval=30, session_dedupe=True) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
        run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        mined = pool.accepted[-1].job_id
        # Go silent between two shares: a submit already on the wire whose reply the proxy
        # then withholds is the lost-reply scenario (test_pool_faults), and its resend is
        # rightly answered "Duplicate share"; this scenario is about shares found after.
        await rig.wait_for(lambda: rig.snapshot().dispatch.in_flight == 0, "no share on the wire")
        proxy.half_open = True
        newer = await pool.broadcast_new_job()  # same block; the silent proxy swallows it

        def held() -> int:
            d = rig.snapshot().dispatch
            return d.pending + d.in_flight

        await rig.wait_for(lambda: held() >= 2, "shares found while the pool is silent")
        await rig.wait_for(lambda: proxy.connections >= 2, "reconnect after silence")
        proxy.half_open = False
        since = len(pool.submits)
        await rig.wait_mining(pool)
        await rig.wait_for(lambda: held() == 0, "held shares answered")
        later = pool.submits[since:]
        await rig.finish([pool])
        dispatch = rig.snapshot().dispatch
    assert newer.job_id != mined
    assert dispatch.lost == 0, dict(dispatch.lost_by_reason)
    assert [s for s in later if not s.accepted] == []
    assert any(s.job_id == mined for s in later), "the held shares went out on their job"
