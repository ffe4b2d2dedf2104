"""The dispatch core, driven with plain records: no sockets, no chips, no clock.

Real shares come from the recorded vectors (the testnet Bitaxe share at difficulty 669.87,
the genesis block); everything else uses a synthetic hash of a chosen difficulty, which is
enough because the dispatcher trusts the driver's hash and only checks that hash and
difficulty belong together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_client.asic.base import FoundNonce
from stratum_client.daemon.dispatcher import (
    LOST_CLEAN_JOBS,
    LOST_EXTRANONCE_CHANGED,
    LOST_JOB_REPLACED,
    LOST_NOT_RESUMED,
    LOST_POOL_SWITCHED,
    LOST_QUEUE_FULL,
    LOST_STALE,
    Action,
    ChainSpec,
    Dispatcher,
    DispatchSnapshot,
    FlushChains,
    SetVersionMask,
    SubmitShare,
)
from stratum_client.daemon.stats import HASHES_PER_DIFF1, NonceCounts
from stratum_client.pool.types import (
    PoolDown,
    PoolUp,
    SessionEvent,
    Share,
    ShareOutcome,
    ShareUnanswered,
)
from stratum_client.protocol import events as ev
from stratum_client.protocol.jobs import JobTable
from stratum_client.work import (
    DIFF1_TARGET,
    Job,
    JobBuilder,
    Work,
    apply_version_bits,
    check_work_nonce,
    parse_notify,
)

DATA = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
VECTORS: dict[str, dict[str, Any]] = {vector["name"]: vector for vector in DATA["jobs"]}
TESTNET = VECTORS["testnet-bitaxe-version-rolled"]
SLUSH = VECTORS["slush-2023-diff683"]
GENESIS = VECTORS["genesis"]
TESTNET_EN1 = bytes.fromhex(TESTNET["extranonce1"])
MASK = 0x1FFFE000

CHAINS = (
    ChainSpec("a", midstates=0, chips=2, ticket_difficulty=256.0),
    ChainSpec("b", midstates=4, chips=1, ticket_difficulty=64.0),
)


# -- builders -----------------------------------------------------------------------


def make_job(
    vector: dict[str, Any] = TESTNET,
    *,
    job_id: str | None = None,
    clean: bool | None = None,
    extranonce1: bytes | None = None,
    extranonce2_size: int | None = None,
    difficulty: float = 512.0,
    block: int = 0,
) -> Job:
    """A job parsed from a recorded notify; ``block`` > 0 gives a different prevhash."""
    params = list(vector["notify"])
    if job_id is not None:
        params[0] = job_id
    if clean is not None:
        params[-1] = clean
    if block:
        params[1] = hashlib.sha256(b"block %d" % block).hexdigest()
    mask = vector["version_mask"]
    return parse_notify(
        params,
        extranonce1=bytes.fromhex(vector["extranonce1"]) if extranonce1 is None else extranonce1,
        extranonce2_size=(
            len(bytes.fromhex(vector["extranonce2"]))
            if extranonce2_size is None
            else extranonce2_size
        ),
        difficulty=difficulty,
        version_mask=int(mask, 16) if mask else 0,
    )


def real_nonce(vector: dict[str, Any], job: Job, *, chip: int = 0) -> FoundNonce:
    """The vector's recorded nonce, as a driver would report it (hash checked for real)."""
    submit = vector["submit"]
    bits = int(submit["version_bits"] or "0", 16)
    version = apply_version_bits(job.version, bits, job.version_mask)
    work = JobBuilder(job).build(bytes.fromhex(vector["extranonce2"]))
    result = check_work_nonce(work, int(submit["nonce"], 16), version)
    return FoundNonce(
        work, result.nonce, version, chip, 0, result.hash, result.share_difficulty, 0.0
    )


def synthetic(
    work: Work, difficulty: float, *, nonce: int = 1, version: int | None = None, chip: int = 0
) -> FoundNonce:
    """A nonce whose hash has ``difficulty`` (the dispatcher does not re-hash headers)."""
    value = int(DIFF1_TARGET / difficulty)
    return FoundNonce(
        work,
        nonce,
        work.version if version is None else version,
        chip,
        0,
        value.to_bytes(32, "little"),
        DIFF1_TARGET / value,
        0.0,
    )


def up(pool: int = 0, en1: bytes = TESTNET_EN1, *, resumed: bool = False) -> PoolUp:
    return PoolUp(pool, f"pool{pool}", en1, 4, resumed, 0.0)


def tables(max_jobs: int) -> Any:
    """Job tables of ``max_jobs`` per pool, as the pool manager keeps them."""
    held: dict[int, JobTable] = {}
    return lambda index: held.setdefault(index, JobTable(max_jobs))


def subscribe(dispatcher: Dispatcher, pool: int = 0, en1: bytes = TESTNET_EN1) -> None:
    """A new session's subscribe reply, as the session records it in the pool's table."""
    dispatcher.job_table(pool).subscribed(en1, 4)


def connect(
    dispatcher: Dispatcher,
    pool: int = 0,
    en1: bytes = TESTNET_EN1,
    *,
    resumed: bool = False,
    now: float = 0.0,
) -> list[Action]:
    """A session comes up: subscribed (the table takes its extranonce1), then PoolUp."""
    subscribe(dispatcher, pool, en1)
    return dispatcher.on_manager_event(up(pool, en1, resumed=resumed), now)


def notify(dispatcher: Dispatcher, job: Job, now: float, pool: int = 0) -> list[Action]:
    """A notify: the session records the job in the pool's table, then reports it."""
    if not dispatcher.job_table(pool).add(job, clean=job.clean_jobs):
        return []  # a repeat: the session reports DuplicateJobIgnored, not a job
    return dispatcher.on_manager_event(SessionEvent(pool, ev.NewJob(job, job.clean_jobs)), now)


def from_session(dispatcher: Dispatcher, event: ev.Event, now: float, pool: int = 0) -> Any:
    """A session event, after the change the session makes to the pool's table."""
    table = dispatcher.job_table(pool)
    match event:
        case ev.VersionRollingNegotiated() | ev.VersionMaskChanged():
            table.set_version_mask(event.mask)
        case ev.VersionRollingUnavailable():
            table.set_version_mask(0)
        case ev.ExtranonceChanged():
            table.set_extranonce(event.extranonce1, event.extranonce2_size)
    return dispatcher.on_manager_event(SessionEvent(pool, event), now)


def resume(dispatcher: Dispatcher, job: Job, now: float) -> list[Action]:
    """The pool takes the session back, then re-announces its current job as clean (as
    pools do after authorize); returns the actions of both events."""
    actions = connect(dispatcher, en1=job.extranonce1, resumed=True, now=now)
    again = dataclasses.replace(job, clean_jobs=True, received_at=now)
    return actions + notify(dispatcher, again, now)


def down(pool: int = 0) -> PoolDown:
    return PoolDown(pool, f"pool{pool}", "connection lost", 0.0)


def set_difficulty(value: float, pool: int = 0) -> SessionEvent:
    return SessionEvent(pool, ev.DifficultyChanged(value, 1.0, 0.0))


def submitted(actions: list[Action]) -> list[Share]:
    return [action.share for action in actions if isinstance(action, SubmitShare)]


def mining(job: Job | None = None, *, difficulty: float = 512.0, **kwargs: Any) -> Dispatcher:
    """A dispatcher with pool 0 up, one job and a difficulty set."""
    job = job or make_job()
    dispatcher = Dispatcher(CHAINS, **kwargs)
    notify(dispatcher, job, 0.0)
    dispatcher.on_manager_event(set_difficulty(difficulty), 0.0)
    connect(dispatcher, en1=job.extranonce1)
    return dispatcher


def classes(dispatcher: Dispatcher) -> NonceCounts:
    return dispatcher.snapshot(1.0).total.nonces


def assert_balanced(snap: DispatchSnapshot) -> None:
    assert snap.balanced, snap
    for pool in snap.pools:
        shares = pool.shares
        ends = shares.accepted + shares.rejected + shares.lost + pool.pending + pool.in_flight
        assert shares.found == ends, pool


# -- classification -----------------------------------------------------------------


def test_recorded_testnet_share_is_submitted_with_its_version_bits() -> None:
    job = make_job()
    dispatcher = mining(job, difficulty=512.0)
    actions = dispatcher.on_nonce("a", real_nonce(TESTNET, job), 5.0)
    [share] = submitted(actions)
    assert share.pool == 0
    assert share.job is job
    assert share.extranonce2 == bytes.fromhex("c7080000")
    assert share.nonce == 0xED460D91
    assert share.version_bits == 0x00002000
    assert share.difficulty == pytest.approx(669.8682919563083)
    assert not share.block
    assert (share.device, share.chip, share.found_at) == ("a", 0, 5.0)
    snap = dispatcher.snapshot(5.0)
    assert snap.total.nonces.share == 1
    assert (snap.found_shares, snap.in_flight) == (1, 1)
    assert_balanced(snap)


@pytest.mark.parametrize(
    ("pool_difficulty", "kind"),
    [(512.0, "share"), (669.0, "share"), (670.0, "below_difficulty"), (1024.0, "below_difficulty")],
)
def test_the_pool_difficulty_decides_share_or_below(pool_difficulty: float, kind: str) -> None:
    job = make_job()
    dispatcher = mining(job, difficulty=pool_difficulty)
    actions = dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0)
    assert getattr(classes(dispatcher), kind) == 1
    assert len(submitted(actions)) == (kind == "share")


def test_set_difficulty_mid_job_applies_to_the_next_check() -> None:
    # the job was stamped with 512; vardiff raises it before the nonce is checked
    job = make_job(difficulty=512.0)
    dispatcher = mining(job, difficulty=512.0)
    dispatcher.on_manager_event(set_difficulty(1024.0), 1.0)
    assert dispatcher.on_nonce("a", real_nonce(TESTNET, job), 2.0) == []
    assert classes(dispatcher).below_difficulty == 1
    assert dispatcher.snapshot(2.0).current_difficulty == 1024.0
    # and a lowered difficulty is honoured at once too, for the same job
    dispatcher.on_manager_event(set_difficulty(256.0), 3.0)
    work = dispatcher.next_work("a", 3.0)
    assert work is not None
    assert work.job is job
    assert submitted(dispatcher.on_nonce("a", synthetic(work, 300.0), 4.0))


def test_genesis_block_is_flagged_and_submitted_even_above_the_pool_difficulty() -> None:
    job = make_job(GENESIS, difficulty=1.0)
    dispatcher = mining(job, difficulty=1e6)  # vardiff above the hash: still a block
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(GENESIS, job), 1.0))
    assert share.block
    assert share.version_bits == 0
    snap = dispatcher.snapshot(1.0)
    assert snap.blocks_found == 1
    assert snap.total.nonces.block == 1
    assert snap.pools[0].shares.blocks_found == 1
    assert snap.devices[0].chips[0].shares.blocks_found == 1


def test_a_repeated_nonce_is_a_duplicate_and_is_not_submitted_again() -> None:
    job = make_job()
    dispatcher = mining(job)
    found = real_nonce(TESTNET, job)
    assert submitted(dispatcher.on_nonce("a", found, 1.0))
    assert dispatcher.on_nonce("a", found, 1.1) == []
    assert dispatcher.on_nonce("b", dataclasses.replace(found, chip=0), 1.2) == []
    counts = classes(dispatcher)
    assert (counts.share, counts.duplicate) == (1, 2)
    # a re-emitted nonce is not new hashing work
    assert dispatcher.snapshot(2.0).devices[0].total.hashrate.total_hashes == (
        256.0 * HASHES_PER_DIFF1
    )


def test_the_same_nonce_under_another_version_is_not_a_duplicate() -> None:
    dispatcher = mining()
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=7), 1.0)
    dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=7, version=work.version | 0x2000), 1.0)
    assert classes(dispatcher).share == 2


def test_the_duplicate_window_is_bounded() -> None:
    dispatcher = mining(dedupe_window=2)
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    first = synthetic(work, 10.0, nonce=1)
    for nonce in (1, 2, 3):
        dispatcher.on_nonce("a", synthetic(work, 10.0, nonce=nonce), 1.0)
    dispatcher.on_nonce("a", first, 1.0)  # forgotten: the window holds only two keys
    assert classes(dispatcher).duplicate == 0
    dispatcher.on_nonce("a", first, 1.0)
    assert classes(dispatcher).duplicate == 1


def test_a_version_outside_the_mask_is_a_hardware_error_never_a_share() -> None:
    job = make_job()
    dispatcher = mining(job)
    found = real_nonce(TESTNET, job)
    outside = dataclasses.replace(found, version=found.version | 0x00000001)
    assert dispatcher.on_nonce("a", outside, 1.0) == []
    no_mask = make_job(SLUSH, job_id="s")
    notify(dispatcher, no_mask, 1.0)
    work = dispatcher.next_work("a", 1.0)
    assert work is not None
    assert work.job is no_mask
    rolled = synthetic(work, 1000.0, version=work.version | 0x2000)
    assert dispatcher.on_nonce("a", rolled, 1.0) == []
    counts = classes(dispatcher)
    assert (counts.hw_error, counts.total) == (2, 2)
    assert dispatcher.snapshot(1.0).devices[0].total.hashrate.total_hashes == 0


def test_inconsistent_records_are_hardware_errors() -> None:
    job = make_job()
    dispatcher = mining(job)
    found = real_nonce(TESTNET, job)
    for bad in (
        dataclasses.replace(found, difficulty=found.difficulty * 2),
        dataclasses.replace(found, hash=found.hash[:31]),
        dataclasses.replace(found, chip=2),  # chain "a" has chips 0 and 1
        dataclasses.replace(found, chip=-1),
    ):
        assert dispatcher.on_nonce("a", bad, 1.0) == []
    snap = dispatcher.snapshot(1.0)
    assert snap.total.nonces.hw_error == 4
    assert snap.devices[0].total.nonces.hw_error == 4
    assert snap.devices[0].chips[0].nonces.hw_error == 2


def test_unknown_chains_are_refused() -> None:
    dispatcher = mining()
    with pytest.raises(ValueError, match="unknown chain"):
        dispatcher.next_work("nope", 0.0)
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    with pytest.raises(ValueError, match="unknown chain"):
        dispatcher.on_nonce("nope", synthetic(work, 10.0), 0.0)


def test_chain_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="midstates"):
        ChainSpec("x", midstates=2, chips=1)
    with pytest.raises(ValueError, match="chip"):
        ChainSpec("x", midstates=0, chips=0)
    with pytest.raises(ValueError, match="ticket"):
        ChainSpec("x", midstates=0, chips=1, ticket_difficulty=0.0)
    with pytest.raises(ValueError, match="duplicate chain"):
        Dispatcher([CHAINS[0], CHAINS[0]])
    with pytest.raises(ValueError, match="pending_limit"):
        Dispatcher(CHAINS, dedupe_window=0)


# -- jobs and work ------------------------------------------------------------------


def test_no_work_before_a_pool_is_up() -> None:
    dispatcher = Dispatcher(CHAINS)
    assert dispatcher.next_work("a", 0.0) is None
    notify(dispatcher, make_job(), 0.0)
    assert dispatcher.next_work("a", 0.0) is None  # jobs arrive before authorize
    actions = connect(dispatcher, now=0.0)
    assert actions == [SetVersionMask(0), FlushChains()]
    assert dispatcher.next_work("a", 0.0) is not None


def test_work_follows_the_chain_kind() -> None:
    dispatcher = Dispatcher([*CHAINS, ChainSpec("c", midstates=1, chips=1)], job_tables=tables(8))
    connect(dispatcher, now=0.0)
    notify(dispatcher, make_job(), 0.0)  # mask 1fffe000
    full, four, one = (dispatcher.next_work(name, 0.0) for name in ("a", "b", "c"))
    assert full is not None
    assert four is not None
    assert one is not None
    assert full.midstates == ()
    assert [m.version for m in four.midstates] == [
        0x20000000,
        0x20002000,
        0x20004000,
        0x20006000,
    ]
    assert len(one.midstates) == 1
    assert full.version == four.version == 0x20000000  # the base version: chips roll
    notify(dispatcher, make_job(SLUSH, job_id="s", clean=True), 0.0)
    unmasked = dispatcher.next_work("b", 0.0)
    assert unmasked is not None
    assert len(unmasked.midstates) == 1


def test_clean_job_flushes_and_makes_older_work_stale() -> None:
    dispatcher = mining()
    old = dispatcher.next_work("a", 0.0)
    assert old is not None
    actions = notify(dispatcher, make_job(job_id="2", clean=True, block=1), 1.0)
    assert actions == [FlushChains()]
    assert dispatcher.snapshot(1.0).job_count == 1
    fresh = dispatcher.next_work("a", 1.0)
    assert fresh is not None
    assert fresh.job.job_id == "2"
    assert dispatcher.on_nonce("a", synthetic(old, 1000.0), 2.0) == []
    assert dispatcher.on_nonce("a", synthetic(old, 10.0, nonce=2), 2.0) == []
    snap = dispatcher.snapshot(2.0)
    assert snap.total.nonces.stale == 2
    assert snap.lost_by_reason == {LOST_STALE: 1}  # only the one that met the difficulty
    assert snap.found_shares == 1
    assert_balanced(snap)
    # stale nonces were real work
    assert snap.devices[0].total.hashrate.total_hashes == 2 * 256.0 * HASHES_PER_DIFF1


def test_non_clean_job_keeps_older_jobs_valid_and_uses_the_newest() -> None:
    dispatcher = mining()
    old = dispatcher.next_work("a", 0.0)
    assert old is not None
    assert notify(dispatcher, make_job(job_id="2"), 1.0) == []
    newest = dispatcher.next_work("a", 1.0)
    assert newest is not None
    assert newest.job.job_id == "2"
    assert submitted(dispatcher.on_nonce("a", synthetic(old, 1000.0), 2.0))


def test_job_history_is_bounded_and_evicted_jobs_go_stale() -> None:
    dispatcher = mining(job_tables=tables(3))
    old = dispatcher.next_work("a", 0.0)
    assert old is not None
    for n in range(2, 6):
        notify(dispatcher, make_job(job_id=str(n)), 0.0)
    assert dispatcher.snapshot(0.0).job_count == 3
    dispatcher.on_nonce("a", synthetic(old, 1000.0), 1.0)
    assert classes(dispatcher).stale == 1


def test_a_job_id_reused_for_different_work_replaces_the_old_job() -> None:
    dispatcher = mining()
    old = dispatcher.next_work("a", 0.0)
    assert old is not None
    reused = make_job(SLUSH, job_id="1", extranonce1=TESTNET_EN1)
    notify(dispatcher, reused, 0.0)
    dispatcher.on_manager_event(down(), 0.0)
    assert dispatcher.on_nonce("a", synthetic(old, 1000.0), 1.0) == []
    assert classes(dispatcher).stale == 1
    assert dispatcher.snapshot(1.0).lost_by_reason == {LOST_STALE: 1}
    # queued shares of a replaced job are lost with that reason
    current = dispatcher.next_work("a", 1.0)
    assert current is not None
    dispatcher.on_nonce("a", synthetic(current, 1000.0, nonce=9), 1.0)
    notify(dispatcher, make_job(job_id="1"), 1.0)
    assert dispatcher.snapshot(1.0).lost_by_reason[LOST_JOB_REPLACED] == 1


def test_extranonce2_survives_a_repeated_non_clean_notify() -> None:
    job = make_job()
    dispatcher = mining(job)
    first = [dispatcher.next_work("a", 0.0) for _ in range(3)]
    repeat = dataclasses.replace(job, received_at=9.0)
    assert notify(dispatcher, repeat, 0.0) == []
    later = [dispatcher.next_work("b", 0.0) for _ in range(3)]
    en2s = [w.extranonce2 for w in first + later if w is not None]
    assert en2s == [n.to_bytes(4, "little") for n in range(6)]
    # nonces for work of the first delivery are still valid shares
    assert first[0] is not None
    assert submitted(dispatcher.on_nonce("a", synthetic(first[0], 1000.0), 1.0))


def test_a_clean_repeat_on_the_same_block_does_not_restart_extranonce2() -> None:
    job = make_job()
    dispatcher = mining(job)
    dispatcher.next_work("a", 0.0)
    notify(dispatcher, dataclasses.replace(job, clean_jobs=True), 0.0)
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    assert work.extranonce2 == (1).to_bytes(4, "little")
    # a new block under the same id is different work: its counter starts afresh
    notify(dispatcher, make_job(clean=True, block=2), 0.0)
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    assert work.extranonce2 == bytes(4)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("work"), st.sampled_from(["a", "b"])),
            st.tuples(st.just("repeat"), st.sampled_from(["1", "2", "3"])),
            st.tuples(st.just("clean"), st.sampled_from(["1", "2", "3"])),
        ),
        max_size=60,
    )
)
def test_no_job_id_and_extranonce2_pair_is_handed_out_twice(ops: list[tuple[str, str]]) -> None:
    dispatcher = mining()
    seen: set[tuple[str, bytes, bytes]] = set()
    for op, arg in ops:
        if op == "work":
            work = dispatcher.next_work(arg, 0.0)
            assert work is not None
            key = (work.job.job_id, work.job.prevhash, work.extranonce2)
            assert key not in seen
            seen.add(key)
        else:
            # same block (same prevhash): a repeat, clean or not, is the same job again
            job = make_job(job_id=arg, clean=op == "clean")
            notify(dispatcher, job, 0.0)


def test_an_exhausted_job_yields_no_more_work() -> None:
    dispatcher = Dispatcher(CHAINS)
    connect(dispatcher, now=0.0)
    notify(dispatcher, make_job(job_id="old", extranonce2_size=1), 0.0)
    notify(dispatcher, make_job(job_id="new", extranonce2_size=1), 0.0)
    units = [dispatcher.next_work("a", 0.0) for _ in range(512)]
    assert all(unit is not None for unit in units)
    assert [u.job.job_id for u in units if u is not None].count("new") == 256
    assert dispatcher.next_work("a", 0.0) is None
    assert dispatcher.snapshot(0.0).exhausted_jobs == 2


# -- sessions and the share queue ---------------------------------------------------


def test_pool_down_queues_shares_and_a_resumed_session_submits_them() -> None:
    job = make_job()
    dispatcher = mining(job)
    dispatcher.on_manager_event(down(), 1.0)
    assert dispatcher.next_work("a", 1.0) is not None  # chips keep hashing
    assert dispatcher.on_nonce("a", real_nonce(TESTNET, job), 2.0) == []
    snap = dispatcher.snapshot(2.0)
    assert (snap.pending, snap.session_up) == (1, False)
    actions = connect(dispatcher, resumed=True, now=3.0)
    # The new session has no job yet: it could not name the share's job, so it waits.
    assert submitted(actions) == []
    again = dataclasses.replace(job, clean_jobs=True, received_at=3.5)  # the pool re-announces it
    actions = notify(dispatcher, again, 3.5)
    [share] = submitted(actions)
    assert share.nonce == 0xED460D91
    assert FlushChains() not in actions  # same pool, same extranonce1: work stays valid
    snap = dispatcher.snapshot(3.0)
    assert (snap.pending, snap.in_flight) == (0, 1)
    assert_balanced(snap)


def test_shares_found_after_pool_up_wait_for_the_sessions_first_job() -> None:
    """Between PoolUp and the first notify the session has no job to name: a share sent
    then would be refused locally as "job unknown", so it waits for the job."""
    job = make_job()
    dispatcher = mining(job)
    work = dispatcher.next_work("a", 0.5)
    assert work is not None
    dispatcher.on_manager_event(down(), 1.0)
    assert submitted(connect(dispatcher, resumed=True, now=2.0)) == []
    assert submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=7), 2.5)) == []
    assert dispatcher.snapshot(2.5).pending == 1
    actions = notify(dispatcher, dataclasses.replace(job, clean_jobs=True), 3.0)
    assert [s.nonce for s in submitted(actions)] == [7]
    assert FlushChains() not in actions  # the re-announced job is the one being mined
    # Once the session has a job, shares go straight out again.
    assert submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=8), 3.5))
    assert_balanced(dispatcher.snapshot(4.0))


def test_a_resumed_pools_clean_reannouncement_keeps_the_held_job_only() -> None:
    older = make_job(job_id="1")
    newest = make_job(job_id="2", clean=False)
    dispatcher = mining(older)
    notify(dispatcher, newest, 0.1)
    dispatcher.on_manager_event(down(), 1.0)
    connect(dispatcher, resumed=True, now=2.0)
    again = dataclasses.replace(newest, clean_jobs=True, received_at=2.5)
    assert notify(dispatcher, again, 2.5) == []
    snap = dispatcher.snapshot(2.5)
    assert snap.job_count == 1
    work = dispatcher.next_work("a", 3.0)
    assert work is not None
    assert work.job is newest  # the entry (and its extranonce2 counter) carried on
    # A nonce on work built before the reconnect is still a live share.
    [share] = submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0), 3.5))
    assert share.job is newest


@pytest.mark.parametrize(("form", "expected"), [("xor", 0x040D0000), ("replace", 0x140D0000)])
def test_share_bits_on_a_regtest_job_follow_the_pools_form(form: str, expected: int) -> None:
    """Job version 0x30000000 has bit 28 inside the mask: the chip's rolled version keeps
    it, the XOR form leaves it out (public-pool flips it back in), the replace form sends
    it (a BIP310 pool copies it)."""
    job = dataclasses.replace(make_job(), version=0x30000000, version_bits_form=form)
    dispatcher = mining(job)
    work = dispatcher.next_work("a", 0.5)
    assert work is not None
    rolled = work.version | 0x2068 << 13
    assert rolled == 0x340D0000
    [share] = submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0, version=rolled), 1.0))
    assert share.version_bits == expected
    rebuilt = 0x30000000 ^ expected if form == "xor" else (0x30000000 & ~MASK) | (expected & MASK)
    assert rebuilt == rolled


def test_a_version_mask_change_applies_to_held_jobs_at_once() -> None:
    """BIP310: the new mask is valid immediately. A nonce on work built before the change,
    rolled in bits only the new mask allows (the chips were reprogrammed), is a share."""
    job = make_job()
    dispatcher = mining(job)
    work = dispatcher.next_work("a", 0.5)
    assert work is not None
    extra = 0x40000000  # outside the job's granted mask, inside the new one
    assert not extra & job.version_mask
    new_mask = job.version_mask | extra
    changed = ev.VersionMaskChanged(new_mask)
    assert from_session(dispatcher, changed, 1.0) == [SetVersionMask(new_mask)]
    rolled = synthetic(work, 1000.0, version=work.version | extra)
    [share] = submitted(dispatcher.on_nonce("a", rolled, 1.5))
    assert share.version_bits == extra
    fresh = dispatcher.next_work("a", 2.0)
    assert fresh is not None
    assert fresh.job.version_mask == new_mask
    assert classes(dispatcher).hw_error == 0


def test_a_new_session_with_another_extranonce1_loses_queued_shares() -> None:
    job = make_job()
    dispatcher = mining(job)
    dispatcher.on_manager_event(down(), 1.0)
    dispatcher.on_nonce("a", real_nonce(TESTNET, job), 2.0)
    actions = connect(dispatcher, en1=b"\x01\x02\x03\x04", now=3.0)
    assert actions == [FlushChains()]
    snap = dispatcher.snapshot(3.0)
    assert snap.lost_by_reason == {LOST_NOT_RESUMED: 1}
    assert (snap.pending, snap.job_count) == (0, 0)
    assert dispatcher.next_work("a", 3.0) is None  # old jobs carry the dead extranonce1
    assert_balanced(snap)


def test_the_new_sessions_first_job_arriving_before_pool_up_switches_work_at_once() -> None:
    job = make_job()
    dispatcher = mining(job)
    dispatcher.on_manager_event(down(), 1.0)
    dispatcher.on_nonce("a", real_nonce(TESTNET, job), 2.0)
    fresh = make_job(job_id="9", extranonce1=b"\xaa\xbb\xcc\xdd", clean=False)
    subscribe(dispatcher, en1=fresh.extranonce1)  # the new session, not yet authorized
    assert notify(dispatcher, fresh, 3.0) == [FlushChains()]
    assert dispatcher.snapshot(3.0).lost_by_reason == {LOST_NOT_RESUMED: 1}
    work = dispatcher.next_work("a", 3.0)
    assert work is not None
    assert work.job is fresh
    dispatcher.on_nonce("a", synthetic(work, 1000.0), 4.0)  # queued until authorized
    [share] = submitted(connect(dispatcher, en1=b"\xaa\xbb\xcc\xdd", now=5.0))
    assert share.job is fresh


def test_a_clean_job_while_down_loses_the_queued_shares_with_that_reason() -> None:
    job = make_job()
    dispatcher = mining(job)
    dispatcher.on_manager_event(down(), 1.0)
    dispatcher.on_nonce("a", real_nonce(TESTNET, job), 2.0)
    notify(dispatcher, make_job(job_id="2", clean=True, block=3), 3.0)
    snap = dispatcher.snapshot(3.0)
    assert snap.lost_by_reason == {LOST_CLEAN_JOBS: 1}
    assert snap.pending == 0
    assert submitted(connect(dispatcher, resumed=True, now=4.0)) == []


def test_the_pending_queue_is_bounded_and_drops_the_oldest() -> None:
    dispatcher = mining(pending_limit=2)
    dispatcher.on_manager_event(down(), 1.0)
    work = dispatcher.next_work("a", 1.0)
    assert work is not None
    for nonce in (1, 2, 3):
        dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=nonce), 2.0)
    snap = dispatcher.snapshot(2.0)
    assert (snap.pending, snap.lost_by_reason) == (2, {LOST_QUEUE_FULL: 1})
    shares = submitted(resume(dispatcher, work.job, 3.0))
    assert [s.nonce for s in shares] == [2, 3]


def test_an_unanswered_share_is_requeued_and_a_duplicate_verdict_is_a_reject() -> None:
    job = make_job()
    dispatcher = mining(job)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0))
    dispatcher.on_manager_event(ShareUnanswered(share, "connection lost"), 2.0)
    dispatcher.on_manager_event(down(), 2.0)
    snap = dispatcher.snapshot(2.0)
    assert (snap.pending, snap.in_flight) == (1, 0)
    [again] = submitted(resume(dispatcher, job, 3.0))
    assert again == share
    outcome = ShareOutcome(again, accepted=False, code=22, reason="Duplicate share", latency=0.1)
    dispatcher.on_manager_event(outcome, 4.0)
    snap = dispatcher.snapshot(4.0)
    assert (snap.rejected, snap.lost) == (1, 0)
    assert snap.pools[0].shares.rejected_by_reason == {"duplicate share": 1}
    assert_balanced(snap)


def test_a_refused_submit_keeps_the_share_pending() -> None:
    job = make_job()
    dispatcher = mining(job)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0))
    dispatcher.submit_refused(share, 1.0)
    snap = dispatcher.snapshot(1.0)
    assert (snap.pending, snap.in_flight) == (1, 0)
    assert submitted(connect(dispatcher, resumed=True, now=2.0)) == [share]


def test_outcomes_are_counted_per_pool_device_and_chip() -> None:
    dispatcher = mining()
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    [first] = submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=1, chip=1), 1.0))
    [second] = submitted(dispatcher.on_nonce("a", synthetic(work, 800.0, nonce=2), 1.0))
    dispatcher.on_manager_event(ShareOutcome(first, True, None, "", 0.05), 2.0)
    dispatcher.on_manager_event(ShareOutcome(second, False, None, "Stale", 0.05), 2.0)
    snap = dispatcher.snapshot(2.0)
    pool = snap.pools[0].shares
    assert (pool.accepted, pool.rejected, pool.stale) == (1, 1, 1)
    assert pool.rejected_by_reason == {"job not found": 1}
    assert pool.accepted_difficulty == pytest.approx(1000.0)
    device = snap.devices[0]
    assert device.total.shares.accepted == 1
    assert device.chips[1].shares.accepted == 1
    assert device.chips[0].shares.rejected == 1
    assert device.chips[1].shares.last_share_at == 2.0
    assert_balanced(snap)


def test_an_outcome_for_an_unknown_share_is_not_counted_as_ours() -> None:
    job = make_job()
    dispatcher = mining(job)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0))
    stranger = dataclasses.replace(share, nonce=12345)
    dispatcher.on_manager_event(ShareOutcome(stranger, True, None, "", None), 2.0)
    dispatcher.on_manager_event(ShareUnanswered(stranger, "timeout"), 2.0)
    snap = dispatcher.snapshot(2.0)
    assert (snap.accepted, snap.untracked_outcomes, snap.in_flight) == (0, 2, 1)
    assert_balanced(snap)


def test_switching_pools_drops_the_old_pools_jobs_and_queued_shares() -> None:
    job = make_job()
    dispatcher = mining(job)
    old_work = dispatcher.next_work("a", 0.0)
    assert old_work is not None
    dispatcher.on_manager_event(down(0), 1.0)
    dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0)
    other = make_job(SLUSH, job_id="q", difficulty=1.0)
    notify(dispatcher, other, 2.0, pool=1)  # a standby session's job
    assert dispatcher.next_work("a", 2.0).job is job  # type: ignore[union-attr]
    actions = connect(dispatcher, 1, bytes.fromhex(SLUSH["extranonce1"]), now=3.0)
    assert FlushChains() in actions
    snap = dispatcher.snapshot(3.0)
    assert (snap.active_pool, snap.lost_by_reason) == (1, {LOST_POOL_SWITCHED: 1})
    assert [p.active for p in snap.pools] == [False, True]
    assert snap.pools[0].jobs == 0
    work = dispatcher.next_work("a", 3.0)
    assert work is not None
    assert work.job is other
    dispatcher.on_nonce("a", synthetic(old_work, 1000.0, nonce=5), 4.0)
    assert classes(dispatcher).stale == 1
    assert dispatcher.snapshot(4.0).pools[0].shares.lost_by_reason[LOST_STALE] == 1
    assert_balanced(dispatcher.snapshot(4.0))


def test_an_unanswered_share_of_a_pool_left_behind_is_lost() -> None:
    job = make_job()
    dispatcher = mining(job)
    [share] = submitted(dispatcher.on_nonce("a", real_nonce(TESTNET, job), 1.0))
    connect(dispatcher, 1, b"\x09\x09\x09\x09", now=2.0)
    dispatcher.on_manager_event(ShareUnanswered(share, "connection closed"), 2.0)
    snap = dispatcher.snapshot(2.0)
    assert (snap.pending, snap.lost_by_reason) == (0, {LOST_POOL_SWITCHED: 1})


def test_version_masks_are_programmed_for_the_active_pool_only() -> None:
    dispatcher = Dispatcher(CHAINS)
    negotiated = ev.VersionRollingNegotiated(MASK)
    assert from_session(dispatcher, negotiated, 0.0) == []  # not authorized yet
    assert connect(dispatcher, now=0.0) == [SetVersionMask(MASK), FlushChains()]
    changed = ev.VersionMaskChanged(0x00FFE000)
    assert from_session(dispatcher, changed, 1.0) == [SetVersionMask(0x00FFE000)]
    assert from_session(dispatcher, changed, 1.0) == []
    standby = ev.VersionRollingUnavailable("declined")
    assert from_session(dispatcher, standby, 1.0, pool=1) == []
    actions = connect(dispatcher, 1, b"\x05\x05\x05\x05", now=2.0)
    assert actions == [SetVersionMask(0), FlushChains()]
    assert dispatcher.snapshot(2.0).version_mask == 0


def test_set_extranonce_flushes_and_rebuilds_the_newest_job_with_the_new_value() -> None:
    job = make_job()
    dispatcher = mining(job)
    old = [dispatcher.next_work("a", 0.0) for _ in range(2)]
    assert old[0] is not None
    dispatcher.on_manager_event(down(), 0.5)
    dispatcher.on_nonce("a", synthetic(old[0], 1000.0, nonce=1), 0.5)  # queued, old en1
    resume(dispatcher, job, 0.6)
    changed = ev.ExtranonceChanged(b"\x0e\x0e\x0e\x0e", 4)
    assert from_session(dispatcher, changed, 1.0) == [FlushChains()]
    work = dispatcher.next_work("a", 1.0)
    assert work is not None
    assert work.job.job_id == job.job_id
    assert work.job.extranonce1 == b"\x0e\x0e\x0e\x0e"
    assert work.extranonce2 == (2).to_bytes(4, "little")  # the counter carried on
    dispatcher.on_nonce("a", synthetic(old[0], 1000.0, nonce=2), 2.0)
    assert classes(dispatcher).stale == 1
    assert submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0, nonce=3), 2.0))
    # the same value again changes nothing
    assert from_session(dispatcher, changed, 3.0) == []
    snap = dispatcher.snapshot(3.0)
    assert snap.lost_by_reason.get(LOST_STALE) == 1
    assert_balanced(snap)


def test_queued_shares_built_on_the_old_extranonce1_are_lost_on_set_extranonce() -> None:
    job = make_job()
    dispatcher = mining(job)
    work = dispatcher.next_work("a", 0.0)
    assert work is not None
    [share] = submitted(dispatcher.on_nonce("a", synthetic(work, 1000.0), 1.0))
    dispatcher.submit_refused(share, 1.0)
    changed = ev.ExtranonceChanged(b"\x0e\x0e\x0e\x0e", 4)
    from_session(dispatcher, changed, 2.0)
    snap = dispatcher.snapshot(2.0)
    assert (snap.pending, snap.lost_by_reason) == (0, {LOST_EXTRANONCE_CHANGED: 1})


def test_a_new_session_forgets_the_old_vardiff_unless_it_sets_one() -> None:
    dispatcher = mining(make_job(difficulty=8.0), difficulty=4096.0)
    dispatcher.on_manager_event(down(), 1.0)
    connect(dispatcher, now=2.0)  # same en1 but not resumed, no set_difficulty
    assert dispatcher.snapshot(2.0).current_difficulty == 8.0
    dispatcher.on_manager_event(down(), 3.0)
    dispatcher.on_manager_event(set_difficulty(64.0), 4.0)
    connect(dispatcher, now=4.0)
    assert dispatcher.snapshot(4.0).current_difficulty == 64.0


def test_hashrate_counts_each_nonce_as_ticket_difficulty_work() -> None:
    dispatcher = mining()
    dispatcher.next_work("a", 0.0)
    work = dispatcher.next_work("b", 0.0)
    assert work is not None
    for second in range(1, 61):
        dispatcher.on_nonce("b", synthetic(work, 100.0, nonce=second), float(second))
    snap = dispatcher.snapshot(60.0)
    expected = 64.0 * HASHES_PER_DIFF1  # chain b: ticket 64, one nonce a second
    chain_b = snap.devices[1]
    assert chain_b.total.hashrate.m1 == pytest.approx(expected, rel=0.1)
    assert chain_b.chips[0].hashrate.m1 == pytest.approx(expected, rel=0.1)
    assert snap.total.hashrate.m1 == pytest.approx(expected, rel=0.1)
    assert snap.devices[0].total.hashrate.m1 == 0.0
    assert chain_b.total.best_difficulty == pytest.approx(100.0)


# -- the ledger never loses a share -------------------------------------------------


class _Walk:
    """A pool manager and two chains, acting at random, checked after every step."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.dispatcher = Dispatcher(
            CHAINS, pending_limit=5, dedupe_window=64, job_tables=tables(3)
        )
        self.en1 = {0: b"\x00\x00\x00\x01", 1: b"\x01\x00\x00\x01"}
        self.block = 1
        self.job_seq = 0
        self.flying: list[Share] = []
        self.works: list[Work] = []
        self.nonces: list[FoundNonce] = []
        self.calls = 0
        self.handed: set[tuple[int, str, bytes, bytes]] = set()

    def act(self, op: str) -> None:
        pool = self.rnd.choice([0, 0, 0, 1])
        getattr(self, f"op_{op}")(pool)
        self.check()

    def apply(self, actions: list[Action]) -> None:
        self.flying.extend(submitted(actions))

    def event(self, event: Any) -> None:
        self.apply(self.dispatcher.on_manager_event(event, 0.0))

    def op_up(self, pool: int) -> None:
        resumed = self.rnd.random() < 0.5
        if not resumed:
            self.en1[pool] = self.rnd.randbytes(4)
        subscribe(self.dispatcher, pool, self.en1[pool])
        self.event(PoolUp(pool, f"p{pool}", self.en1[pool], 4, resumed, 0.0))

    def op_down(self, pool: int) -> None:
        self.event(PoolDown(pool, f"p{pool}", "test", 0.0))

    def op_job(self, pool: int) -> None:
        clean = self.rnd.random() < 0.3
        self.block += clean
        self.job_seq += 1
        job_id = str(self.rnd.choice([self.job_seq, self.job_seq, 1]))
        job = make_job(job_id=job_id, clean=clean, block=self.block, extranonce1=self.en1[pool])
        self.apply(notify(self.dispatcher, job, 0.0, pool))

    def op_difficulty(self, pool: int) -> None:
        self.event(set_difficulty(self.rnd.choice([100.0, 512.0, 5000.0]), pool))

    def op_extranonce(self, pool: int) -> None:
        self.en1[pool] = self.rnd.randbytes(4)
        self.apply(
            from_session(self.dispatcher, ev.ExtranonceChanged(self.en1[pool], 4), 0.0, pool)
        )

    def op_work(self, pool: int) -> None:
        del pool
        work = self.dispatcher.next_work(self.rnd.choice(["a", "b"]), 0.0)
        if work is not None:
            active = self.dispatcher.active_pool
            assert active is not None
            key = (active, work.job.job_id, work.job.prevhash, work.extranonce2)
            assert key not in self.handed
            self.handed.add(key)
            self.works.append(work)

    def op_nonce(self, pool: int) -> None:
        del pool
        if not self.works:
            return
        roll = self.rnd.random()
        if roll < 0.15 and self.nonces:
            found = self.rnd.choice(self.nonces)  # a re-emitted nonce
        else:
            work = self.rnd.choice(self.works[-6:])
            difficulty = self.rnd.choice([70.0, 300.0, 1000.0, 10_000.0, 2e8])
            found = synthetic(
                work, difficulty, nonce=self.rnd.getrandbits(32), chip=self.rnd.choice([0, 1])
            )
            if roll > 0.95:
                found = dataclasses.replace(found, difficulty=1.0)  # inconsistent
            self.nonces.append(found)
        self.calls += 1
        self.apply(self.dispatcher.on_nonce("a", found, 0.0))

    def _take(self) -> Share | None:
        if not self.flying:
            return None
        return self.flying.pop(self.rnd.randrange(len(self.flying)))

    def op_outcome(self, pool: int) -> None:
        del pool
        share = self._take()
        if share is not None:
            accepted = self.rnd.random() < 0.7
            code = None if accepted else self.rnd.choice([21, 22, 23, None])
            self.event(ShareOutcome(share, accepted, code, "" if accepted else "nope", 0.1))

    def op_unanswered(self, pool: int) -> None:
        del pool
        share = self._take()
        if share is not None:
            self.event(ShareUnanswered(share, "timeout"))

    def op_refused(self, pool: int) -> None:
        del pool
        share = self._take()
        if share is not None:
            self.dispatcher.submit_refused(share, 0.0)

    def check(self) -> None:
        snap = self.dispatcher.snapshot(1.0)
        assert_balanced(snap)
        assert snap.total.nonces.total == self.calls
        assert sum(d.total.nonces.total for d in snap.devices) == self.calls
        assert snap.in_flight == len(self.flying)
        assert snap.pending <= 5
        assert snap.untracked_outcomes == 0


OPS = [
    "up",
    "down",
    "job",
    "difficulty",
    "extranonce",
    "work",
    "work",
    "nonce",
    "nonce",
    "nonce",
    "outcome",
    "unanswered",
    "refused",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(OPS), min_size=1, max_size=120), st.randoms())
def test_every_nonce_is_classified_once_and_no_share_goes_unaccounted(
    ops: list[str], rnd: random.Random
) -> None:
    walk = _Walk(rnd)
    for op in ops:
        walk.act(op)


def test_a_long_random_walk_stays_balanced() -> None:
    walk = _Walk(random.Random(20240601))
    for _ in range(3000):
        walk.act(walk.rnd.choice(OPS))
    snap = walk.dispatcher.snapshot(1.0)
    counts = snap.total.nonces
    assert counts.share
    assert counts.stale
    assert counts.duplicate
    assert counts.below_difficulty
    assert counts.block
    assert counts.hw_error
    assert snap.accepted
    assert snap.rejected
    assert snap.lost
