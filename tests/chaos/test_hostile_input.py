"""Hostile pool input against the real daemon, through a proxy in front of an honest pool.

The proxy injects lines on the pool's side; the honest pool behind it still judges every
submit. Each scenario: the daemon survives, mining resumes within ``RESUME_BOUND`` after
the honest difficulty and job are re-sent, no invalid share is sent, and the nonce and
share ledgers add up.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from chaos_rig import POOL_DIFFICULTY, ChainPlan, PoolEntry, Rig, log_events, run_rig
from hostile_pool import (
    HostileProxy,
    absurd_difficulty_lines,
    fuzz_lines,
    garbage_lines,
    huge_branch_notify,
    line,
    wrong_shape_lines,
)

from stratum_client.testing.pool import LocalPool

pytestmark = pytest.mark.chaos

RESUME_BOUND = 20.0
"""Seconds from the end of the hostile burst to the next accepted share."""


@asynccontextmanager
async def proxied(
    tmp_path: Path, chains: Sequence[ChainPlan] | None = None
) -> AsyncIterator[tuple[LocalPool, HostileProxy, Rig]]:
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
        run_rig(tmp_path, [PoolEntry(proxy.url, "main")], chains) as rig,
    ):
        await rig.wait_mining(pool, 2)
        yield pool, proxy, rig


async def survive(rig: Rig, pool: LocalPool, proxy: HostileProxy, lines: Sequence[bytes]) -> float:
    """Inject ``lines``, undo any lie, and return the seconds until mining resumed.

    Shares queued during an earlier drop can satisfy the previous ``wait_mining`` before
    the daemon has reconnected, so wait for its connection before injecting.
    """
    await rig.wait_for(lambda: proxy.miners == 1, "a miner connection")
    assert await proxy.inject(lines) == 1
    await proxy.restore()
    rig.assert_alive()
    return await rig.wait_mining(pool, 2)


async def test_over_long_line_drops_the_connection(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    async with proxied(tmp_path) as (pool, proxy, rig):
        assert await survive(rig, pool, proxy, [b"[" + b"7," * 512 * 1024 + b"7]\n"]) < RESUME_BOUND
        assert proxy.connections >= 2
        await rig.finish([pool])
    broke = [e for e in log_events(captured_logs) if e["event"].startswith("pool broke")]
    assert broke
    assert "line" in broke[0]["error"]


async def test_invalid_utf8_and_json(tmp_path: Path) -> None:
    """One line at a time: a line that drops the connection must not hide the next one."""
    async with proxied(tmp_path) as (pool, proxy, rig):
        for raw in garbage_lines():
            assert await proxy.inject([raw]) == 1
            assert await rig.wait_mining(pool) < RESUME_BOUND
            await rig.wait_for(lambda: proxy.miners == 1, "a miner connection")
        await rig.finish([pool])


async def test_wrong_types_and_arities(tmp_path: Path) -> None:
    async with proxied(tmp_path) as (pool, proxy, rig):
        for lines in (wrong_shape_lines(), wrong_shape_lines(job_id="1")):
            assert await survive(rig, pool, proxy, lines) < RESUME_BOUND
        await rig.finish([pool])


async def test_huge_merkle_branches(tmp_path: Path) -> None:
    """100 branches fits a line and is merely absurd; 900 is near the 64 KiB line cap."""
    async with proxied(tmp_path) as (pool, proxy, rig):
        for n, branches in enumerate((100, 900, 5000)):
            notify = huge_branch_notify(f"huge{n}", branches)
            assert await survive(rig, pool, proxy, [notify]) < RESUME_BOUND
        await rig.finish([pool])


async def test_absurd_difficulties_are_not_obeyed(tmp_path: Path) -> None:
    async with proxied(tmp_path) as (pool, proxy, rig):
        absurd = [raw for raw in absurd_difficulty_lines() if b"1e300" not in raw]
        assert await proxy.inject(absurd) == 1
        await rig.wait_mining(pool, 3)
        assert rig.snapshot().dispatch.current_difficulty == POOL_DIFFICULTY
        assert await survive(rig, pool, proxy, absurd_difficulty_lines()) < RESUME_BOUND
        await rig.finish([pool])


async def test_duplicated_job_ids(tmp_path: Path) -> None:
    async with proxied(tmp_path) as (pool, proxy, rig):
        honest = proxy.last_notify
        assert honest is not None
        assert await survive(rig, pool, proxy, [honest, honest, honest]) < RESUME_BOUND
        twins = [huge_branch_notify("twin", 2), huge_branch_notify("twin", 3)]
        assert await survive(rig, pool, proxy, twins) < RESUME_BOUND
        await rig.finish([pool])


async def test_notifications_before_subscribe(tmp_path: Path) -> None:
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        HostileProxy(pool.host, pool.port) as proxy,
    ):
        proxy.greeting = [
            line({"id": None, "method": "mining.set_difficulty", "params": [2.0**-30]}),
            huge_branch_notify("early", 2),
            line({"id": None, "method": "mining.set_extranonce", "params": ["deadbeef", 4]}),
            line({"id": None, "method": "mining.set_version_mask", "params": ["ffffffff"]}),
            line({"id": 1, "result": True, "error": None}),
        ]
        async with run_rig(tmp_path, [PoolEntry(proxy.url, "main")]) as rig:
            assert await rig.wait_mining(pool, 3) < RESUME_BOUND
            await rig.finish([pool])


@pytest.mark.parametrize("size", [0, 64])
async def test_extranonce2_sizes(tmp_path: Path, size: int) -> None:
    """Size 0 is legal (one unit per job, so jobs come every second); 64 exceeds any
    coinbase sanity and must be refused, with mining carrying on at the backup."""
    async with (
        LocalPool(
            strict=True, difficulty=POOL_DIFFICULTY, extranonce2_size=size, job_interval=1
        ) as odd,
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as backup,
    ):
        pools = [PoolEntry(odd.url, "odd"), PoolEntry(backup.url, "backup")]
        async with run_rig(tmp_path, pools) as rig:
            if size == 0:
                assert await rig.wait_mining(odd, 3) < RESUME_BOUND
                assert {r.extranonce2 for r in odd.accepted} == {""}
            else:
                assert await rig.wait_mining(backup, 3) < RESUME_BOUND
                assert odd.submits == []
                assert "extranonce2" in rig.snapshot().pools[0].last_error
            await rig.finish([odd, backup])


async def test_fuzzed_lines(tmp_path: Path) -> None:
    """300 mutated lines (seeded): whatever the session makes of them, mining goes on."""
    rng = random.Random(20261123)
    async with proxied(tmp_path) as (pool, proxy, rig):
        for _ in range(3):
            assert await survive(rig, pool, proxy, fuzz_lines(rng, 100)) < RESUME_BOUND
        current = rig.snapshot().dispatch.current_difficulty
        assert current is not None
        assert math.isfinite(current)
        await rig.finish([pool])
