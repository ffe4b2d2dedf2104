"""Pool faults against the real daemon: restarts, half-open, slow, torn lines, redirects.

Every scenario ends with the same checks (see ``chaos_rig``): the daemon is still running,
the honest pool accepts shares again within ``RESUME_BOUND`` seconds of the fault ending,
no invalid share reached it, and every nonce the emulated chips reported is accounted for.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from chaos_rig import (
    ChainPlan,
    PoolEntry,
    accepted_twice,
    invalid_rejects,
    log_events,
    run_rig,
)
from hostile_pool import HostileProxy

from stratum_client.testing.pool import LocalPool

pytestmark = pytest.mark.chaos

RESUME_BOUND = 20.0
"""Seconds from a fault's end to the next accepted share; backoff is capped at 0.5 s
in the rig's policy, so this leaves a wide margin for a loaded 2-core machine."""


async def test_pool_killed_and_restarted_many_times(tmp_path: Path) -> None:
    async with (
        LocalPool(strict=True, difficulty=2.0**-14) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        for _ in range(6):
            await pool.stop()
            await rig.wait_for(lambda: not rig.snapshot().dispatch.session_up, "pool down")
            await pool.start()
            assert await rig.wait_mining(pool) < RESUME_BOUND
        connections = pool.connections
        await rig.finish([pool])
    assert connections >= 7


async def test_half_open_pool_is_detected_and_left(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    """The TCP connection stays open but nothing comes back: silence_timeout (3 s) ends it."""
    async with (
        LocalPool(strict=True, difficulty=2.0**-14, job_interval=30) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
        run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        proxy.half_open = True
        await rig.wait_for(lambda: proxy.connections >= 2, "reconnect after silence")
        proxy.half_open = False
        assert await rig.wait_mining(pool) < RESUME_BOUND
        await rig.finish([pool])
    endings = [
        e["reason"] for e in log_events(captured_logs) if e["event"] == "pool connection ended"
    ]
    assert endings[0].startswith("pool silent for")


async def test_slow_pool_still_gets_shares(tmp_path: Path) -> None:
    """Every pool line arrives 1.5 s late: slow, but inside the 2 s request timeout."""
    async with (
        LocalPool(strict=True, difficulty=2.0**-14) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
    ):
        proxy.delay = 1.5
        async with run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig:
            assert await rig.wait_mining(pool, 4) < 3 * RESUME_BOUND
            await rig.finish([pool])
        assert proxy.connections == 1


async def test_reset_mid_line(tmp_path: Path) -> None:
    async with (
        LocalPool(strict=True, difficulty=2.0**-14) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
        run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig,
    ):
        for round_ in range(3):
            await rig.wait_mining(pool, 2)
            assert await proxy.reset_mid_line() == 1
            expected = round_ + 2
            await rig.wait_for(lambda: proxy.connections >= expected, "reconnect")  # noqa: B023
            assert await rig.wait_mining(pool) < RESUME_BOUND
        await rig.finish([pool])


async def test_reconnect_to_another_domain_is_refused(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    async with (
        LocalPool(strict=True, difficulty=2.0**-14) as pool,
        LocalPool(strict=True, host="127.0.0.2", difficulty=2.0**-14) as elsewhere,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        await pool.request_reconnect("127.0.0.2", elsewhere.port, 0)
        await pool.request_reconnect("evil.example.com", elsewhere.port, 0)
        await rig.wait_mining(pool, 3)
        assert pool.connections == 1
        assert elsewhere.connections == 0
        await rig.finish([pool, elsewhere])
    refused = [e for e in log_events(captured_logs) if "another domain" in e["event"]]
    assert {e["host"] for e in refused} == {"127.0.0.2", "evil.example.com"}


async def test_pool_that_rejects_everything(tmp_path: Path) -> None:
    async with LocalPool(strict=True, difficulty=2.0**-14) as pool:
        pool.reject_all = True
        async with run_rig(tmp_path, [PoolEntry(pool.url, "main")]) as rig:
            await rig.wait_for(lambda: rig.snapshot().dispatch.rejected >= 5, "5 rejects")
            rig.assert_alive()
            assert len(pool.accepted) == 0
            pool.reject_all = False
            assert await rig.wait_mining(pool, 2) < RESUME_BOUND
            snap = rig.snapshot()
            await rig.finish([pool])
    assert snap.dispatch.rejected == len(pool.rejected)
    assert snap.pools[0].rejected == len(pool.rejected)


async def test_failover_while_the_primary_flaps(tmp_path: Path) -> None:
    """Two pools; the primary dies repeatedly: mining moves to the backup and back."""
    async with (
        LocalPool(strict=True, difficulty=2.0**-14) as primary,
        LocalPool(strict=True, difficulty=2.0**-14) as backup,
    ):
        pools = [PoolEntry(primary.url, "primary"), PoolEntry(backup.url, "backup")]
        chains = [ChainPlan("a", "bm1366", 2), ChainPlan("b", "bm1397", 1, seed=3)]
        async with run_rig(tmp_path, pools, chains) as rig:
            await rig.wait_mining(primary, 2)
            for _ in range(2):
                await primary.stop()
                assert await rig.wait_mining(backup) < RESUME_BOUND
                await primary.start()
                assert await rig.wait_mining(primary) < RESUME_BOUND
            await rig.finish([primary, backup])


async def test_share_whose_reply_was_lost_is_not_credited_twice(tmp_path: Path) -> None:
    """The pool judged the shares but the replies died with the connection.

    The daemon re-sends unanswered shares on the resumed session (it cannot know the pool
    got them); a pool must then refuse them as duplicates, never credit them twice. Replies
    stay withheld until the cut, so every reply lost is one the proxy counted: withheld, or
    not yet back from the pool when the link was cut.
    """
    async with (
        LocalPool(strict=True, difficulty=2.0**-14, session_dedupe=True) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
        run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        proxy.swallow_submit_replies = True
        await rig.wait_for(lambda: proxy.swallowed >= 3, "3 replies withheld")
        assert await proxy.reset_mid_line() == 1
        proxy.swallow_submit_replies = False
        assert await rig.wait_mining(pool, 3) < RESUME_BOUND
        await rig.quiesce()
        assert all(ledger.problems(lossy_line=False) == [] for ledger in rig.ledgers())
        assert rig.snapshot().dispatch.balanced
        assert await rig.stop() == 0
    assert accepted_twice(pool) == []
    # Refusing a resubmitted copy as a duplicate is the right answer, and only those.
    duplicates = [r for r in pool.rejected if r.code == 22]
    assert proxy.undelivered >= proxy.swallowed >= 3
    assert len(duplicates) <= proxy.undelivered
    assert [r for r in invalid_rejects([pool]) if r.code != 22] == []
