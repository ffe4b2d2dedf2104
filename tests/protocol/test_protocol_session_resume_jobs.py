"""A resumed session keeps the previous connection's jobs on the same block.

After a reconnect the pool re-announces only its newest job, with ``clean_jobs`` set.
Shares found while the pool was away on an older job of the same block are still good
to a pool that keeps jobs per block, so a resumed session adopts those jobs instead of
voiding them; a session the pool did not resume, or a notify on a new block, does not.
"""

from __future__ import annotations

import json

import pytest
from stratum_script import SLUSH, TESTNET, notify, one, ready_session, sent

from stratum_client.errors import WorkError
from stratum_client.protocol import NewJob, PoolSession
from stratum_client.work.job import Job

EN1 = "57a6f098"
EN2 = b"\x00\x00\x00\x01"


def previous_session() -> tuple[PoolSession, Job, Job]:
    """A session that received job "a" (clean) then "b" (same block), then dropped."""
    session, _ = ready_session(en1=EN1)
    a = one(session.receive_data(notify(TESTNET, job_id="a", clean=True), 1.0), NewJob).job
    b = one(session.receive_data(notify(TESTNET, job_id="b", clean=False), 2.0), NewJob).job
    return session, a, b


def resumed(old: PoolSession, *, sub_id: str = "sub-1", en1: str = EN1) -> PoolSession:
    session, _ = ready_session(
        en1=en1, now=10.0, sub_id=sub_id, resume_id="sub-1", jobs=old.job_table
    )
    return session


def test_a_resumed_sessions_clean_reannouncement_keeps_the_blocks_older_jobs() -> None:
    old, a, _ = previous_session()
    session = resumed(old)
    event = one(session.receive_data(notify(TESTNET, job_id="c", clean=True), 11.0), NewJob)
    assert event.clean is False  # nothing older is void: the chips keep their work
    assert list(session.jobs) == ["a", "b", "c"]
    # A share found on "a" while the pool was away goes out under its job id.
    send = session.submit(a, EN2, a.ntime, 0x1234, 0x2000, now=11.5)
    assert json.loads(send.data)["params"][1] == "a"


def test_reannouncing_a_carried_job_keeps_one_copy_of_it() -> None:
    old, _, b = previous_session()
    session = resumed(old)
    event = one(session.receive_data(notify(TESTNET, job_id="b", clean=True), 11.0), NewJob)
    assert (event.clean, list(session.jobs)) == (False, ["a", "b"])
    assert session.jobs["b"] is event.job
    # The old session's copy of "b" still resolves (same work, later arrival).
    assert sent([session.submit(b, EN2, b.ntime, 0x1234, 0x2000, now=11.5)])


def test_only_the_first_notify_adopts_later_clean_jobs_void_everything() -> None:
    old, _, _ = previous_session()
    session = resumed(old)
    session.receive_data(notify(TESTNET, job_id="c", clean=True), 11.0)
    event = one(session.receive_data(notify(TESTNET, job_id="d", clean=True), 12.0), NewJob)
    assert (event.clean, list(session.jobs)) == (True, ["d"])


def test_a_new_block_voids_the_carried_jobs() -> None:
    old, a, _ = previous_session()
    assert SLUSH["notify"][1] != TESTNET["notify"][1]  # another previous-block hash
    session = resumed(old)
    event = one(session.receive_data(notify(SLUSH, job_id="c", clean=True), 11.0), NewJob)
    assert (event.clean, list(session.jobs)) == (True, ["c"])
    with pytest.raises(WorkError, match="not among"):
        session.submit(a, EN2, a.ntime, 0x1234, 0x2000, now=11.5)


@pytest.mark.parametrize(
    ("sub_id", "en1", "why"),
    [
        ("sub-2", EN1, "the pool gave a new subscription: not resumed"),
        ("sub-1", "0badf00d", "same id but another extranonce1: the old work hashes wrong"),
    ],
)
def test_carried_jobs_need_a_real_resume(sub_id: str, en1: str, why: str) -> None:
    old, a, _ = previous_session()
    session = resumed(old, sub_id=sub_id, en1=en1)
    event = one(session.receive_data(notify(TESTNET, job_id="c", clean=True), 11.0), NewJob)
    assert (event.clean, list(session.jobs)) == (True, ["c"]), why
    with pytest.raises(WorkError, match="not among"):
        session.submit(a, EN2, a.ntime, 0x1234, 0x2000, now=11.5)
