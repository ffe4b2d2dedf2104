"""The daemon against a real pool in front of a real bitcoind (opt-in: ``--real-pool``).

Two emulated BM1366 chips (``difficulty_scale`` 2**-22, so a nonce is worth 6.1e-5)
mine for the configured time with ``suggest_difficulty = 0.0001`` as ``<address>.emu``.
On regtest every nonce is a block candidate and about 40 % of them miss the pool
difficulty. The truths are outside the daemon: the pool's answer to every submit, and
bitcoind, asked for the block of every candidate the pool took (main chain, side branch
after a lost race for the height, or unknown). Prints one JSON line with the figures.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.dispatcher import LOST_STALE, DispatchSnapshot
from stratum_client.pool.types import ManagerEvent, Share, ShareOutcome
from stratum_client.work import apply_version_bits, check_share
from stratum_client.work.candidates import HELD_BELOW_DIFFICULTY
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import serve_chains
from tests.peers.conftest import Peers
from tests.peers.rpc import block_confirmations, call

SCALE = 2.0**-22
SUGGEST = 0.0001
CHIPS = 2
DRAIN = 30.0
"""Deadline for the last answers after the chips stop (not a measurement)."""


def _config(peers: Peers, link: str, state_dir: Path) -> str:
    below = "true" if peers.submit_below else "false"
    return (
        f'[daemon]\nstate_dir = "{state_dir}"\nlog_level = "info"\n\n'
        f'[[pools]]\nname = "real-pool"\nurl = "{peers.pool_url}"\n'
        f'user = "{peers.address}.emu"\nsuggest_difficulty = {SUGGEST}\n'
        f"submit_block_candidates_below_difficulty = {below}\n\n"
        f'[[devices]]\nname = "emu"\ndriver = "bm1366"\nport = "{link}"\nchips = {CHIPS}\n'
        f"difficulty_scale = {SCALE}\noptions = {{ramp_step_delay = 0}}\n"
    )


def _observe(daemon: Daemon) -> list[ShareOutcome]:
    """Every share outcome the pool manager reports, seen on its way to the dispatcher."""
    outcomes: list[ShareOutcome] = []
    dispatcher = daemon.dispatcher
    deliver = dispatcher.on_manager_event

    def observed(event: ManagerEvent, now: float) -> Any:
        if isinstance(event, ShareOutcome):
            outcomes.append(event)
        return deliver(event, now)

    setattr(dispatcher, "on_manager_event", observed)  # noqa: B010 - a spy, not a stand-in
    return outcomes


async def _mine(peers: Peers, directory: Path) -> tuple[DispatchSnapshot, list[ShareOutcome]]:
    chain = EmulatedChain("bm1366", CHIPS, difficulty_scale=SCALE)
    link = str(directory / "tty-emu")
    async with serve_chains([chain], [link]):
        daemon = Daemon(parse_config(_config(peers, link, directory)), handle_signals=False)
        outcomes = _observe(daemon)
        task = asyncio.create_task(daemon.run(), name="daemon-against-real-pool")
        loop = asyncio.get_running_loop()
        end = loop.time() + peers.duration
        while loop.time() < end and not task.done():  # noqa: ASYNC110 - mining for a time
            await asyncio.sleep(0.5)
        assert not task.done(), f"the daemon ended early ({task.result()})"
        chain.faults.dead_chips = frozenset(range(CHIPS))  # no new nonces; answers settle
        end = loop.time() + DRAIN
        while daemon.snapshot().dispatch.in_flight and loop.time() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        daemon.request_stop()
        assert await task == 0
    return daemon.snapshot().dispatch, outcomes


def _block_hash(share: Share) -> str:
    job = share.job
    version = apply_version_bits(
        job.version, share.version_bits, job.version_mask, job.version_bits_form
    )
    return check_share(job, share.extranonce2, share.ntime, share.nonce, version).hash_hex


def _fates(rpc_url: str, outcomes: list[ShareOutcome]) -> Counter[str]:
    """Each block candidate the daemon submitted, by what became of it."""
    fates: Counter[str] = Counter()
    for outcome in outcomes:
        if not outcome.share.block:
            continue
        if not outcome.accepted:
            fates[f"rejected by the pool: [{outcome.code}, {outcome.reason!r}]"] += 1
            continue
        confirmations = block_confirmations(rpc_url, _block_hash(outcome.share))
        if confirmations is None:
            fates["taken by the pool, unknown to bitcoind"] += 1
        elif confirmations >= 1:
            fates["accepted by bitcoind (main chain)"] += 1
        else:
            fates["bitcoind has it off the main chain (another block won the height)"] += 1
    return fates


async def test_the_daemon_against_a_real_pool_and_bitcoind(peers: Peers, tmp_path: Path) -> None:
    before = int(call(peers.rpc_url, "getblockcount"))
    snap, outcomes = await _mine(peers, tmp_path)
    after = int(call(peers.rpc_url, "getblockcount"))
    fates = _fates(peers.rpc_url, outcomes)
    lost = dict(snap.lost_by_reason)
    stale_nonces = lost.pop(LOST_STALE, 0)
    held = lost.pop(HELD_BELOW_DIFFICULTY, 0)
    for reason, count in lost.items():
        fates[f"lost: {reason}"] += count
    if held:
        fates[f"held back: {HELD_BELOW_DIFFICULTY}"] += held
    if snap.pending or snap.in_flight:
        fates["unanswered at the end (pending or in flight)"] += snap.pending + snap.in_flight
    codes = Counter(str(o.code) for o in outcomes if not o.accepted)
    submitted = len(outcomes)
    not_stale = sum(n for code, n in codes.items() if code != "21")
    figures = {
        "duration_s": peers.duration,
        "height_before": before,
        "height_after": after,
        "blocks_accepted_by_core": after - before,
        "block_candidates": snap.blocks_found,
        "held_back_below_difficulty": held,
        "submitted": submitted,
        "pool_accepted": sum(1 for o in outcomes if o.accepted),
        "pool_rejected_by_code": dict(codes),
        "rejected_other_than_21_ratio": not_stale / submitted if submitted else 0.0,
        "stale_nonces_not_submitted": stale_nonces,
        "candidate_fates": dict(fates),
        "submit_block_candidates_below_difficulty": peers.submit_below,
    }
    print(json.dumps(figures, sort_keys=True))
    assert submitted > 0, "no share reached the pool"
    assert snap.balanced
    assert snap.found_shares - stale_nonces == snap.blocks_found, (
        "every share must be a block candidate: run this against regtest"
    )
    assert sum(fates.values()) == snap.blocks_found, figures  # every candidate accounted
    assert fates["taken by the pool, unknown to bitcoind"] == 0, figures
    assert not_stale <= 0.01 * submitted, figures
