"""cgminer ``pools`` per-pool share figures, read with pyasic's RPC client from a live daemon.

The truths are independent of the daemon: the local pool's own verdicts (it rebuilds and
hashes every share, so the difficulty it records is its own) and the emulated chains'
record of every nonce they reported (each stands for one ticket's worth of work).
pyasic's cgminer backend does not read these three fields today; its RPC client returns
the reply as sent, which is what is checked here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import warnings
from typing import TYPE_CHECKING

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.config import ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.telemetry import CgminerService

if TYPE_CHECKING:
    from tests.daemon.conftest import Emulated, PoolFactory

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic.rpc.cgminer import CGMinerRPCAPI  # type: ignore[import-untyped]


async def test_pools_reports_last_share_time_difficulty_accepted_and_diff1_shares(
    emulated_chains: Emulated, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    config = parse_config(emulated_chains.config([pool], extra="[api]\ncgminer_enabled = true\n"))
    api = dataclasses.replace(config.api, cgminer_listen=ListenAddress("127.0.0.1", 0))
    cgminer = CgminerService(dataclasses.replace(config, api=api))
    daemon = Daemon(config, handle_signals=False, services=[cgminer])
    started = time.time()
    task = asyncio.create_task(daemon.run(), name="daemon-under-test")
    chains = emulated_chains.chains.values()
    try:
        await wait_until("4 accepted shares", lambda: len(pool.accepted) >= 4)
        for chain in chains:  # the chips stop hashing, so every count can settle
            chain.faults.dead_chips = frozenset(range(chain.chip_count))

        def settled() -> bool:
            d = daemon.snapshot().dispatch
            reported = sum(len(chain.reported) for chain in chains)
            return (
                d.total.nonces.total == reported
                and d.in_flight == d.pending == 0
                and d.accepted == len(pool.accepted)
            )

        await wait_until("every reported nonce counted and answered", settled)
        assert cgminer.server is not None
        rpc = CGMinerRPCAPI("127.0.0.1", cgminer.server.port)
        row = (await rpc.pools())["POOLS"][0]
        read_at = time.time()
    finally:
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            assert await task == 0

    assert row["Accepted"] == len(pool.accepted) >= 4
    assert row["Difficulty Accepted"] == pytest.approx(
        sum(record.difficulty for record in pool.accepted), abs=1e-8
    )
    assert row["Difficulty Rejected"] == 0.0
    work = sum(len(chain.reported) * chain.effective_difficulty() for chain in chains)
    assert work > 0
    assert row["Diff1 Shares"] == pytest.approx(work, abs=1e-7)
    assert int(started) <= row["Last Share Time"] <= read_at
