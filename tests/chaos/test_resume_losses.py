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

from drivers.base import FoundNonce
from stratum_client.daemon.dispatcher import ChainSpec, Dispatcher, SubmitShare
from stratum_client.pool.types import PoolDown, PoolUp, SessionEvent
from stratum_client.protocol import events as ev
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
