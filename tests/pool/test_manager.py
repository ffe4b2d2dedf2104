"""The pool manager against real local pools on 127.0.0.1: no mocks, small timing knobs."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from skippable_time import SkippableTime
from structlog.testing import capture_logs

from stratum_client.config import PoolConfig, PoolPolicy
from stratum_client.errors import InputError
from stratum_client.pool.manager import LOCAL_JOB_UNKNOWN, VERSION_ROLLING_MASK, PoolManager
from stratum_client.pool.types import (
    ManagerEvent,
    PoolDown,
    PoolUp,
    SessionEvent,
    Share,
    ShareOutcome,
    ShareUnanswered,
)
from stratum_client.protocol import events as ev
from stratum_client.secrets import Secret
from stratum_client.testing.pool import LocalPool, PoolJob
from stratum_client.work.builder import build_work
from stratum_client.work.job import Job
from stratum_client.work.share import check_work_nonce

DIFFICULTY = 2.0**-20
PASSWORD = "correct-horse-battery"
FAST = PoolPolicy(
    connect_timeout=1.0,
    silence_timeout=10.0,
    backoff_initial=0.05,
    backoff_max=0.2,
    return_to_primary_after=1.0,
    primary_probe_interval=0.25,
    submit_timeout=5.0,
    drain_timeout=1.0,
)

E = TypeVar("E")
SLUSH_NOTIFY: list[Any] = next(
    job["notify"]
    for job in json.loads(
        (Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json").read_text()
    )["jobs"]
    if job["name"] == "slush-2023-diff683"
)
"""A real pool's ``mining.notify`` params (from the shared vectors)."""


class Recorder:
    """The sink: records every event and lets a test wait for the next one of a kind."""

    def __init__(self) -> None:
        self.events: list[ManagerEvent] = []
        self._cursor = 0
        self._arrived = asyncio.Event()

    def __call__(self, event: ManagerEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def next(
        self, kind: type[E], where: Callable[[E], bool] = lambda e: True, within: float = 10.0
    ) -> E:
        """The first matching event after the previous match (waiting for it)."""
        async with asyncio.timeout(within):
            while True:
                for position in range(self._cursor, len(self.events)):
                    event = self.events[position]
                    if isinstance(event, kind) and where(event):
                        self._cursor = position + 1
                        return event
                self._arrived.clear()
                await self._arrived.wait()

    async def job(self, pool: int = 0) -> Job:
        event = await self.next(
            SessionEvent, lambda e: e.pool == pool and isinstance(e.event, ev.NewJob)
        )
        assert isinstance(event.event, ev.NewJob)
        return event.event.job

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


def config(
    port: int, *, host: str = "127.0.0.1", name: str | None = None, **extra: Any
) -> PoolConfig:
    scheme = "stratum+ssl" if extra.get("tls") else "stratum+tcp"
    return PoolConfig(
        url=f"{scheme}://{host}:{port}",
        host=host,
        port=port,
        tls=extra.pop("tls", False),
        user="bc1qtest.rig1",
        password=Secret(PASSWORD),
        name=name or f"pool-{port}",
        **extra,
    )


@asynccontextmanager
async def running(
    pools: Sequence[PoolConfig], policy: PoolPolicy = FAST, clock: SkippableTime | None = None
) -> AsyncIterator[tuple[PoolManager, Recorder]]:
    recorder = Recorder()
    timers: dict[str, Any] = {} if clock is None else {"clock": clock, "sleep": clock.sleep}
    manager = PoolManager(
        pools,
        policy,
        sink=recorder,
        user_agent="stratum-client-test/1",
        rng=random.Random(5),
        **timers,
    )
    task = asyncio.create_task(manager.run())
    try:
        yield manager, recorder
        assert not task.done(), "run() must not end on pool problems"
    finally:
        await manager.close()
        async with asyncio.timeout(5):
            await task


def solve(job: Job, extranonce2: bytes = bytes(4), pool: int = 0) -> Share:
    """Brute-force a nonce meeting the job's (tiny) pool difficulty."""
    work = build_work(job, extranonce2)
    for nonce in range(1 << 32):
        result = check_work_nonce(work, nonce)
        if result.meets_pool_difficulty:
            return Share(
                pool=pool,
                job=job,
                extranonce2=extranonce2,
                ntime=job.ntime,
                nonce=nonce,
                version_bits=result.version_bits,
                difficulty=result.share_difficulty,
                block=result.meets_network_target,
                device="test",
                chip=0,
                found_at=time.monotonic(),
            )
    raise AssertionError("no nonce")


# -- connecting and submitting ------------------------------------------------------------


async def test_connects_and_reports_pool_up_and_jobs() -> None:
    async with LocalPool(difficulty=DIFFICULTY) as pool:
        with capture_logs() as logs:
            async with running([config(pool.port, name="main")]) as (manager, rec):
                up = await rec.next(PoolUp)
                job = await rec.job()
                status = manager.statuses()[0]
    assert (up.pool, up.name, up.resumed, up.extranonce2_size) == (0, "main", False, 4)
    assert len(up.extranonce1) == 4
    assert job.extranonce1 == up.extranonce1
    assert job.version_mask == VERSION_ROLLING_MASK
    assert (status.state, status.difficulty, status.connects) == ("active", DIFFICULTY, 1)
    assert status.version_mask == VERSION_ROLLING_MASK
    assert (status.url, status.user) == (f"stratum+tcp://127.0.0.1:{pool.port}", "bc1qtest.rig1")
    authorize = next(r for r in pool.requests if r["method"] == "mining.authorize")
    assert authorize["params"] == ["bc1qtest.rig1", PASSWORD]
    assert PASSWORD not in repr(logs)
    assert PASSWORD not in repr(rec.events)
    assert isinstance(rec.events[-1], PoolDown)  # close() says goodbye


async def test_accepted_share() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        share = solve(await rec.job())
        assert manager.submit(share)
        outcome = await rec.next(ShareOutcome)
        assert await manager.drain(1.0) == 0
        assert manager.statuses()[0].accepted == 1
    assert outcome.share is share
    assert outcome.accepted
    assert outcome.latency is not None
    assert outcome.latency >= 0
    assert len(pool.accepted) == 1


async def test_rejected_shares_carry_the_pool_code() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        job = await rec.job()
        share = solve(job)
        assert manager.submit(share)
        assert manager.submit(share)  # the pool sees a duplicate
        first = await rec.next(ShareOutcome)
        duplicate = await rec.next(ShareOutcome)
        pool.reject_all = True
        assert manager.submit(solve(job, bytes.fromhex("00000001")))
        refused = await rec.next(ShareOutcome)
        status = manager.statuses()[0]
    assert first.accepted
    assert (duplicate.accepted, duplicate.code) == (False, 22)
    assert (refused.accepted, refused.code) == (False, 20)
    assert "test" in refused.reason
    assert (status.accepted, status.rejected, status.stale) == (1, 2, 0)


async def test_submit_without_a_session_on_that_pool_is_declined() -> None:
    async with LocalPool(difficulty=DIFFICULTY) as pool:
        recorder = Recorder()
        idle = PoolManager([config(pool.port)], FAST, sink=recorder, user_agent="t/1")
        async with running([config(pool.port), config(pool.port + 1)]) as (manager, rec):
            share = solve(await rec.job())
            assert not idle.submit(share)  # never ran
            assert not manager.submit(replace(share, pool=1))
            assert manager.active == 0
    assert recorder.events == []
    assert not rec.of(ShareUnanswered)


async def test_share_for_a_job_the_session_does_not_know_gets_a_local_verdict() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        share = solve(await rec.job())
        unknown = replace(share, job=replace(share.job, job_id="f00d"))
        assert manager.submit(unknown)
        verdict = await rec.next(ShareOutcome)
        misfit = replace(share, extranonce2=bytes(3))
        assert manager.submit(misfit)
        other = await rec.next(ShareOutcome)
        status = manager.statuses()[0]
    assert (verdict.share, verdict.accepted, verdict.code) == (unknown, False, 21)
    assert verdict.reason == LOCAL_JOB_UNKNOWN
    assert verdict.latency is None
    assert (other.share, other.code, other.latency) == (misfit, 20, None)
    assert other.reason.startswith("not sent:")
    assert pool.submits == []
    assert (status.rejected, status.stale) == (2, 1)


async def test_a_failing_sink_does_not_break_the_connection() -> None:
    up = asyncio.Event()

    def fragile(event: ManagerEvent) -> None:
        if isinstance(event, PoolUp):
            up.set()
        if isinstance(event, SessionEvent):
            raise RuntimeError("dispatcher bug")

    async with LocalPool(difficulty=DIFFICULTY) as pool:
        manager = PoolManager([config(pool.port)], FAST, sink=fragile, user_agent="t/1")
        task = asyncio.create_task(manager.run())
        with capture_logs() as logs:
            async with asyncio.timeout(5):
                await up.wait()
            await asyncio.sleep(0.1)
        assert manager.active == 0
        await manager.close()
        await task
    assert any(e["event"] == "pool event sink failed" for e in logs)


# -- outages, resume, failover -------------------------------------------------------------


async def test_pool_restart_resumes_and_reports_in_flight_shares() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        first = await rec.next(PoolUp)
        share = solve(await rec.job())
        pool.silent = True  # the submit reaches the pool but is never answered
        assert manager.submit(share)
        assert await manager.drain(0.2) == 1
        await pool.stop()
        pool.silent = False
        down = await rec.next(PoolDown)
        unanswered = await rec.next(ShareUnanswered)
        await pool.start()
        again = await rec.next(PoolUp)
        assert await manager.drain(0.1) == 0
    assert down.pool == 0
    assert "closed" in down.reason
    assert unanswered.share is share
    assert unanswered.reason == down.reason
    assert again.resumed
    assert again.extranonce1 == first.extranonce1
    assert not rec.of(ShareOutcome)


async def test_every_taken_share_ends_exactly_once_across_an_outage() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        await rec.next(PoolUp)
        job = await rec.job()
        shares = [solve(job, index.to_bytes(4, "big")) for index in range(12)]
        taken = {id(s): manager.submit(s) for s in shares[:4]}
        assert await manager.drain(2.0) == 0  # answered
        pool.silent = True
        taken |= {id(s): manager.submit(s) for s in shares[4:8]}  # in flight
        await pool.stop()
        pool.silent = False
        await rec.next(PoolDown)
        taken |= {id(s): manager.submit(s) for s in shares[8:10]}  # no session
        await pool.start()
        await rec.next(PoolUp, lambda e: e.resumed)
        await rec.job()  # the pool repeats the job on the resumed session
        taken |= {id(s): manager.submit(s) for s in shares[10:]}
        assert await manager.drain(2.0) == 0
    ends = [e.share for e in rec.events if isinstance(e, ShareOutcome | ShareUnanswered)]
    for share in shares:
        assert ends.count(share) == (1 if taken[id(share)] else 0), share.extranonce2.hex()
    assert [taken[id(s)] for s in shares] == [True] * 8 + [False] * 2 + [True] * 2
    accepted = [e.share for e in rec.of(ShareOutcome) if e.accepted]
    assert accepted == shares[:4] + shares[10:]  # old-job shares still count after a resume
    assert len(pool.accepted) == 6


async def test_failover_to_backup_and_back_to_primary_only_after_a_healthy_streak() -> None:
    async with LocalPool(difficulty=DIFFICULTY) as primary, LocalPool() as backup:
        pools = [config(primary.port, name="primary"), config(backup.port, name="backup")]
        clock = SkippableTime()
        async with running(pools, clock=clock) as (manager, rec):
            await rec.next(PoolUp, lambda e: e.pool == 0)
            await primary.stop()
            await rec.next(PoolDown, lambda e: e.pool == 0)
            await rec.next(PoolUp, lambda e: e.pool == 1)
            assert manager.active == 1
            await clock.skip(0.6)  # a few failed probes
            primary_status = manager.statuses()[0]
            assert primary_status.state == "failed"
            assert "refused" in primary_status.last_error
            restarted = clock()
            await primary.start()
            down = await rec.next(PoolDown, lambda e: e.pool == 1)
            back = await rec.next(PoolUp, lambda e: e.pool == 0)
            assert [s.state for s in manager.statuses()] == ["active", "standby"]
    assert back.at - restarted >= FAST.return_to_primary_after
    assert back.at - restarted < 8
    assert "returning" in down.reason
    assert [e.pool for e in rec.of(PoolUp)] == [0, 1, 0]


async def test_silent_pool_is_dropped_and_the_backup_used() -> None:
    policy = replace(FAST, silence_timeout=1.0)
    async with (  # jobs every 0.3 s: a live pool is never quiet for a whole second
        LocalPool(difficulty=DIFFICULTY, job_interval=0.3) as quiet,
        LocalPool(job_interval=0.3) as backup,
        running([config(quiet.port), config(backup.port)], policy) as (manager, rec),
    ):
        up = await rec.next(PoolUp)
        quiet.silent = True
        down = await rec.next(PoolDown)
        await rec.next(PoolUp, lambda e: e.pool == 1)
        await asyncio.sleep(2.5)  # probes of the silent pool keep failing
        assert manager.active == 1
    assert down.at - up.at >= policy.silence_timeout
    assert "silent" in down.reason
    assert [e.pool for e in rec.of(PoolUp)] == [0, 1]


async def test_refused_worker_fails_over_at_once() -> None:
    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        results: dict[str, Any] = {
            "mining.subscribe": [[["mining.notify", "1"]], "aabbccdd", 4],
            "mining.configure": {"version-rolling": False},
        }
        while line := await reader.readline():
            request = json.loads(line)
            method = request["method"]
            error = [24, "unknown worker", None] if method == "mining.authorize" else None
            reply = {"id": request["id"], "result": results.get(method), "error": error}
            writer.write(json.dumps(reply).encode() + b"\n")
        writer.close()

    server = await asyncio.start_server(refusing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        LocalPool() as backup,
        running([config(port), config(backup.port)]) as (manager, rec),
    ):
        await rec.next(PoolUp, lambda e: e.pool == 1)
        status = manager.statuses()[0]
    assert "refused worker" in status.last_error
    assert "unknown worker" in status.last_error
    assert status.failures == 1
    # The refused session told the dispatcher of its (absent) version rolling, so it ends
    # with a PoolDown naming the refusal; then the backup's goodbye.
    downs = rec.of(PoolDown)
    assert [down.pool for down in downs] == [0, 1]
    assert "unknown worker" in downs[0].reason


# -- client.reconnect ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "requested"),
    [("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("localhost", "LOCALHOST")],
)
async def test_reconnect_within_the_domain_is_followed(configured: str, requested: str) -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as first,
        LocalPool() as second,
        running([config(first.port, host=configured)]) as (manager, rec),
    ):
        await rec.next(PoolUp)
        await first.request_reconnect(requested, second.port)
        down = await rec.next(PoolDown)
        await rec.next(PoolUp)
        assert second.client_count == 1
        assert manager.statuses()[0].url == f"stratum+tcp://{configured}:{first.port}"
    assert "reconnect" in down.reason
    assert str(second.port) in down.reason


async def test_reconnect_waits_as_asked() -> None:
    clock = SkippableTime()
    async with (
        LocalPool(difficulty=DIFFICULTY) as first,
        LocalPool() as second,
        running([config(first.port)], clock=clock) as (_manager, rec),
    ):
        await rec.next(PoolUp)
        await first.request_reconnect("127.0.0.1", second.port, wait=1)
        down = await rec.next(PoolDown)
        await clock.skip(1.0)
        up = await rec.next(PoolUp)
    assert up.at - down.at >= 1.0


@pytest.mark.parametrize("requested", ["evil.example.com", "localhost"])
async def test_reconnect_to_another_domain_is_refused(requested: str) -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as first,
        LocalPool() as second,
        running([config(first.port)]) as (manager, rec),
    ):
        await rec.next(PoolUp)
        with capture_logs() as logs:
            await first.request_reconnect(requested, second.port)
            await asyncio.sleep(0.5)
        assert manager.active == 0
        assert second.connections == 0
        assert not rec.of(PoolDown)
    assert any("ignoring client.reconnect" in e["event"] for e in logs)


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


async def test_tls_pool_with_a_private_ca(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with (
        LocalPool(difficulty=DIFFICULTY, ssl_context=tls_server(ca)) as pool,
        running([config(pool.port, tls=True, ca_file=ca_file)]) as (manager, rec),
    ):
        share = solve(await rec.job())
        assert manager.submit(share)
        outcome = await rec.next(ShareOutcome)
    assert outcome.accepted


async def test_tls_pool_with_an_untrusted_certificate_fails_over(
    ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    impostor = tls_server(trustme.CA())
    async with LocalPool(ssl_context=impostor) as bad, LocalPool() as backup:
        pools = [config(bad.port, tls=True, ca_file=ca_file), config(backup.port)]
        async with running(pools) as (manager, rec):
            await rec.next(PoolUp, lambda e: e.pool == 1)
            status = manager.statuses()[0]
    assert "certificate" in status.last_error
    assert "127.0.0.1" in status.last_error
    assert status.state == "failed"
    assert [e.pool for e in rec.of(PoolUp)] == [1]


# -- draining and planned switches ------------------------------------------------------------


async def test_drain_waits_for_a_share_in_flight_then_close_reports_it() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as pool,
        running([config(pool.port)]) as (manager, rec),
    ):
        share = solve(await rec.job())
        pool.silent = True
        assert manager.submit(share)
        started = time.monotonic()
        assert await manager.drain(0.3) == 1
        assert time.monotonic() - started >= 0.29
        assert manager.outstanding == 1
    unanswered = rec.of(ShareUnanswered)
    assert [u.share for u in unanswered] == [share]
    assert unanswered[0].reason == "shutting down"
    assert manager.outstanding == 0


async def test_a_planned_switch_lets_in_flight_shares_be_answered() -> None:
    async with (
        LocalPool(difficulty=DIFFICULTY) as first,
        LocalPool() as second,
        running([config(first.port), config(second.port)]) as (manager, rec),
    ):
        share = solve(await rec.job())
        assert manager.submit(share)
        manager.switch_to(1)
        down = await rec.next(PoolDown)
        outcome = await rec.next(ShareOutcome)
        await rec.next(PoolUp, lambda e: e.pool == 1)
    assert down.pool == 0
    assert outcome.accepted
    assert not rec.of(ShareUnanswered)


# -- control: switch, enable, add, reload ---------------------------------------------------------


async def test_manual_switch_sticks_until_switched_back() -> None:
    clock = SkippableTime()
    async with (
        LocalPool() as first,
        LocalPool() as second,
        running([config(first.port), config(second.port)], clock=clock) as (manager, rec),
    ):
        await rec.next(PoolUp)
        manager.switch_to(1)
        await rec.next(PoolUp, lambda e: e.pool == 1)
        await clock.skip(1.5)  # longer than return_to_primary_after: no probing
        assert [s.state for s in manager.statuses()] == ["standby", "active"]
        manager.switch_to(0)
        await rec.next(PoolUp, lambda e: e.pool == 0)
        with pytest.raises(InputError, match="no pool 5"):
            manager.switch_to(5)
    assert [e.pool for e in rec.of(PoolUp)] == [0, 1, 0]


async def test_disable_enable_and_add() -> None:
    async with (
        LocalPool() as first,
        LocalPool() as second,
        LocalPool() as third,
        running([config(first.port), config(second.port)]) as (manager, rec),
    ):
        await rec.next(PoolUp)
        manager.set_enabled(0, False)
        await rec.next(PoolUp, lambda e: e.pool == 1)
        assert [s.state for s in manager.statuses()] == ["disabled", "active"]
        with pytest.raises(InputError, match="last enabled"):
            manager.set_enabled(1, False)
        assert manager.add_pool(config(third.port, name="third")) == 2
        assert manager.statuses()[2].name == "third"
        manager.set_enabled(0, True)  # healthy: back after return_to_primary_after
        back = await rec.next(PoolUp, lambda e: e.pool == 0)
        manager.switch_to(2)
        await rec.next(PoolUp, lambda e: e.pool == 2)
    assert back.pool == 0
    assert third.connections >= 1


async def test_reload_keeps_an_unchanged_active_pool_and_switches_otherwise() -> None:
    async with LocalPool() as first, LocalPool() as second:
        pools = [config(first.port), config(second.port)]
        async with running(pools) as (manager, rec):
            await rec.next(PoolUp)
            connections = first.connections
            manager.reload([*pools, config(second.port + 1, name="extra")])
            await asyncio.sleep(0.3)
            assert first.connections == connections
            assert not rec.of(PoolDown)
            assert len(manager.statuses()) == 3
            manager.reload([pools[1], pools[0]])
            down = await rec.next(PoolDown)
            up = await rec.next(PoolUp)
            assert manager.statuses()[0].url == pools[1].url
            with pytest.raises(InputError):
                manager.reload([])
    assert "reloaded" in down.reason
    assert up.pool == 0
    assert second.client_count == 0  # the manager closed; it had moved to `second`
    assert second.connections >= 1


# -- the local test pool's own controls -----------------------------------------------


async def _raw_session(pool: LocalPool, resume: str | None = None) -> tuple[Any, Any, str]:
    """A bare Stratum client: subscribe (resuming ``resume``) and authorize."""
    reader, writer = await asyncio.open_connection(pool.host, pool.port)
    params = ["raw", resume] if resume else ["raw"]
    writer.write(json.dumps({"id": 1, "method": "mining.subscribe", "params": params}).encode())
    writer.write(
        b"\n"
        + json.dumps({"id": 2, "method": "mining.authorize", "params": ["w", "x"]}).encode()
        + b"\n"
    )
    session = ""
    while True:
        message = json.loads(await reader.readline())
        if message.get("id") == 1:
            session = message["result"][0][0][1]
        if message.get("method") == "mining.notify":
            return reader, writer, session


async def _submit(reader: Any, writer: Any, request_id: int, job: PoolJob) -> Any:
    params = ["w", job.job_id, "00000000", f"{job.ntime:08x}", "00000001"]
    writer.write(
        json.dumps({"id": request_id, "method": "mining.submit", "params": params}).encode() + b"\n"
    )
    while True:
        message = json.loads(await reader.readline())
        if message.get("id") == request_id:
            return message


async def test_local_pool_refuses_a_share_resubmitted_on_the_resumed_session() -> None:
    """A share whose reply was lost is sent again after a resume: a pool must call it a
    duplicate, not credit it twice (dedupe per session, not per connection)."""
    async with LocalPool(difficulty=1e-12, session_dedupe=True) as pool:  # any hash: a share
        job = pool.new_job()
        reader, writer, session = await _raw_session(pool)
        first = await _submit(reader, writer, 3, job)
        writer.close()
        reader, writer, again = await _raw_session(pool, resume=session)
        assert again == session
        second = await _submit(reader, writer, 4, job)
        writer.close()
    assert first["result"] is True
    assert second["error"][0] == 22
    assert [s.reason for s in pool.submits] == ["", "duplicate share"]


async def test_local_pool_holds_submit_replies_until_released() -> None:
    async with LocalPool(difficulty=1e-12) as pool:
        job = pool.new_job()
        reader, writer, _ = await _raw_session(pool)
        pool.hold_submits()
        reply = asyncio.create_task(_submit(reader, writer, 3, job))
        async with asyncio.timeout(10):
            while pool.held_submits == 0:  # noqa: ASYNC110 - a counter, not an event
                await asyncio.sleep(0.01)
        assert not reply.done()
        assert pool.submits == []
        pool.release_submits()
        assert (await reply)["result"] is True
        assert pool.held_submits == 0
        writer.close()


async def test_a_session_that_dies_before_authorize_still_ends_with_pool_down() -> None:
    """The job it announced must not count as the next session's job (shares would be
    resubmitted before that session had one), so the dispatcher hears PoolDown."""
    params = SLUSH_NOTIFY
    notify = json.dumps({"id": None, "method": "mining.notify", "params": params}).encode()

    async def dies_before_authorize(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            if request["method"] == "mining.subscribe":
                result = [[["mining.notify", "1"]], "aabbccdd", 4]
                w.write(json.dumps({"id": request["id"], "result": result, "error": None}).encode())
                w.write(b"\n" + notify + b"\n")
            elif request["method"] == "mining.authorize":
                break  # hang up instead of answering
        w.close()

    server = await asyncio.start_server(dies_before_authorize, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, running([config(port)]) as (_, rec):
        job = await rec.job()
        down = await rec.next(PoolDown, lambda e: e.pool == 0)
    assert job.job_id == params[0]
    assert not rec.of(PoolUp)
    assert down.reason
