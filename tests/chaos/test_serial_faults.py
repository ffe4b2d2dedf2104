"""Serial faults against the real daemon: noise, lost and repeated replies, dead and
stalled chips, forged job ids, and the device vanishing and coming back.

The emulator counts every fault it injected, so each scenario checks that the fault
really happened and that every nonce the chips reported is accounted for: passed on,
or counted by the driver as a duplicate, stale, hardware error or CRC-rejected frame.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_rig import POOL_DIFFICULTY, ChainPlan, PoolEntry, Rig, run_rig

from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.driver import Bm13xxDriver
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.faults import Faults

pytestmark = pytest.mark.chaos

RESUME_BOUND = 20.0
"""Seconds from the device returning (or the fault ending) to the next accepted share."""


class ForgingChain(EmulatedChain):
    """Also emits nonce replies naming job ids the host never sent (up to ``limit``)."""

    limit = 20

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.forged = 0

    def hash_step(self, max_hashes: int) -> bytes:
        replies = super().hash_step(max_hashes)
        unused = [j for j in self.model.job_ids() if j not in self.job_ids]
        if self.forged >= self.limit or not unused or not self.job_ids:
            return replies
        self.forged += 1
        return replies + self.codec.encode_nonce_reply(0x12345678 + self.forged, unused[0])


def driver(rig: Rig, name: str = "a") -> Bm13xxDriver:
    (only,) = rig.drivers[name]
    assert isinstance(only, Bm13xxDriver)
    return only


async def test_corrupted_bytes(tmp_path: Path) -> None:
    plan = ChainPlan(faults=Faults(corrupt_rate=0.003))
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 6)
        await rig.wait_for(lambda: plan.faults.corrupted_bytes >= 5, "5 corrupted bytes")
        await rig.finish([pool])
        assert driver(rig).crc_errors > 0


async def test_dropped_replies(tmp_path: Path) -> None:
    plan = ChainPlan(faults=Faults(drop_rate=0.3))
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 4)
        await rig.wait_for(lambda: plan.faults.dropped_replies >= 3, "3 dropped replies")
        await rig.finish([pool])


async def test_dead_chip(tmp_path: Path) -> None:
    plan = ChainPlan(chips=3, faults=Faults(dead_chips=frozenset({1})))
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 4)
        chips = rig.snapshot().dispatch.devices[0].chips
        await rig.finish([pool])
    assert chips[1].nonces.total == 0
    assert chips[0].nonces.total > 0
    assert chips[2].nonces.total > 0


async def test_duplicate_nonces(tmp_path: Path) -> None:
    """Every nonce re-emitted three times: each copy is counted, none is submitted twice."""
    plan = ChainPlan(faults=Faults(duplicate_nonces=3))
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 4)
        await rig.finish([pool])
        (ledger,) = rig.ledgers()
    assert plan.faults.duplicates_sent == 3 * plan.faults.nonces_sent
    assert ledger.duplicates == plan.faults.duplicates_sent
    assert not [r for r in pool.rejected if r.code == 22]


async def test_replies_for_unknown_job_ids(tmp_path: Path) -> None:
    plan = ChainPlan(chain_type=ForgingChain)
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 4)
        chain = rig.servers[0].chain
        assert isinstance(chain, ForgingChain)
        rig.assert_alive()
        await rig.quiesce()
        (ledger,) = rig.ledgers()
        forged = chain.forged
        unknown = driver(rig).unknown_job_nonces
        assert rig.share_problems([pool]) == []
        assert await rig.stop() == 0
    assert forged > 0
    assert 0 < unknown <= forged
    assert ledger.seen == ledger.emitted + forged
    assert ledger.hw_errors >= forged


async def test_stalled_chips_recover(tmp_path: Path) -> None:
    """Every core stops finding nonces for a while (a stalled chain), then recovers."""
    plan = ChainPlan()
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], [plan]) as rig,
    ):
        await rig.wait_mining(pool, 2)
        plan.faults.dead_chips = frozenset({0, 1})
        stalled_at = plan.faults.nonces_sent
        lines = len(rig.status_lines) + 3
        await rig.wait_for(lambda: len(rig.status_lines) >= lines, "3 s of stall")
        assert plan.faults.nonces_sent == stalled_at
        assert [c.state for c in rig.snapshot().chains] == ["running"]
        rig.assert_alive()
        plan.faults.dead_chips = frozenset()
        assert await rig.wait_mining(pool, 2) < RESUME_BOUND
        await rig.finish([pool])
        assert len(rig.drivers["a"]) == 1  # the stall did not cost a driver restart


async def test_device_unplugged_and_plugged_back(tmp_path: Path) -> None:
    plans = [ChainPlan("a", "bm1366", 2), ChainPlan("b", "bm1397", 1, seed=3)]
    async with (
        LocalPool(strict=True, difficulty=POOL_DIFFICULTY) as pool,
        run_rig(tmp_path, [PoolEntry(pool.url, "main")], plans) as rig,
    ):
        await rig.wait_mining(pool, 2)
        await rig.wait_for(lambda: all(rig.drivers[p.name] for p in plans), "both drivers")
        for cycle in range(3):
            for server in rig.servers:
                server.unplug()
            await rig.wait_for(
                lambda: all(driver(rig, p.name).state != "running" for p in plans),
                "drivers notice the unplug",
            )
            for server in rig.servers:
                await server.plug()
            back = cycle + 1
            await rig.wait_for(
                lambda: all(driver(rig, p.name).reconnects == back for p in plans),  # noqa: B023
                "both chains brought up again",
            )
            assert await rig.wait_mining(pool, 2) < RESUME_BOUND
        await rig.finish([pool], lossy_line=True)
