"""The daemon against pools that restart, fail, fall silent, redirect or use TLS.

Emulated BM1366 and BM1397 chains mine against LocalPools; the pools' own submit
records and the emulators' records of reported nonces are the independent truths.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

import trustme
from structlog.testing import capture_logs

from stratum_client.daemon.dispatcher import (
    LOST_CLEAN_JOBS,
    LOST_POOL_SWITCHED,
    LOST_STALE,
    DispatchSnapshot,
)
from stratum_client.testing.pool import LocalPool
from stratum_client.work.target import share_difficulty

if TYPE_CHECKING:
    from tests.daemon.conftest import PoolFactory, Rig, RigFactory

FAST_POLICY = {"connect_timeout": 2.0, "backoff_initial": 0.2, "backoff_max": 0.5}


def _settled(rig: Rig) -> bool:
    """Every nonce the chips reported has been read, checked and its share answered."""
    snap = rig.dispatch()
    if snap.pending or snap.in_flight or not snap.session_up:
        return False
    for name, chain in rig.chains.items():
        driver = rig.drivers.get(name)
        if driver is None:
            return False
        counted = sum(c.nonces + c.duplicates + c.hw_errors for c in driver.counters)
        if len(chain.reported) != counted:
            return False
        device = next(d for d in snap.devices if d.name == name)
        if (
            sum(c.nonces for c in driver.counters)
            != device.total.nonces.total + driver.dropped_nonces
        ):
            return False
    return True


def _accepted_keys(pool: LocalPool) -> set[tuple[str, ...]]:
    """Distinct shares the pool accepted (a share resent after a restart counts once)."""
    return {
        (s.extranonce1, s.job_id, s.extranonce2, s.ntime, s.nonce, s.version_bits or "")
        for s in pool.accepted
    }


def _assert_no_share_lost(rig: Rig, pool: LocalPool, difficulty: float) -> DispatchSnapshot:
    """Every nonce the emulators reported is accounted for, and every share with it.

    The identity, from the chips' side to the pool's:

        reported = passed to the dispatcher (late ones for flushed work included)
                   + dropped by a driver + driver duplicates + hardware errors
        passed   = share + block + below_difficulty + stale + duplicate + hw_error
        reported shares (hash ≥ pool difficulty, from the emulators' own digests)
                 = accepted by the pool (distinct) + rejected + lost (with reasons)
                   + shares among the nonces never passed on (driver-level, zero here)
    """
    snap = rig.dispatch()
    shares_reported = 0
    for name, chain in rig.chains.items():
        driver = rig.drivers[name]
        device = next(d for d in snap.devices if d.name == name)
        nonces = device.total.nonces
        delivered = sum(c.nonces for c in driver.counters)
        duplicates = sum(c.duplicates for c in driver.counters)
        hw_errors = sum(c.hw_errors for c in driver.counters)
        assert len(chain.reported) == delivered + duplicates + hw_errors
        assert delivered == nonces.total + driver.dropped_nonces
        # Nothing left the chips' side unaccounted: no driver drops, duplicates or
        # hardware errors in this run, so every reported nonce reached the dispatcher
        # (stale ones too) and got exactly one class there.
        assert (driver.dropped_nonces, duplicates, hw_errors) == (0, 0, 0)
        shares_reported += sum(share_difficulty(r.digest) >= difficulty for r in chain.reported)
    totals = snap.total.nonces
    assert totals.hw_error == totals.duplicate == 0
    assert snap.pending == snap.in_flight == 0
    assert snap.untracked_outcomes == 0
    accepted = _accepted_keys(pool)
    assert snap.accepted == len(accepted)
    lost = sum(snap.lost_by_reason.values())
    assert lost == snap.lost
    assert shares_reported == snap.found_shares == snap.accepted + snap.rejected + snap.lost, (
        shares_reported,
        snap.found_shares,
        snap.accepted,
        snap.rejected,
        dict(snap.lost_by_reason),
    )
    # Every share the pool accepted is one the chips really reported.
    reported_nonces = {f"{r.nonce:08x}" for c in rig.chains.values() for r in c.reported}
    assert {key[4] for key in accepted} <= reported_nonces
    return snap


async def test_no_share_lost_across_a_pool_restart(
    mining_rig: RigFactory, pool_factory: PoolFactory
) -> None:
    # Shares are remembered per session, so a resent copy can never be credited twice.
    local_pool = await pool_factory(session_dedupe=True)
    async with mining_rig([local_pool]) as rig:
        await rig.wait_for_shares(local_pool, 4)
        await local_pool.broadcast_new_job()  # two jobs in play when the pool dies
        await rig.wait_for_shares(local_pool, 2)
        connections = local_pool.connections
        await local_pool.stop()
        await rig.wait_until("pool seen down", lambda: not rig.dispatch().session_up)
        await rig.wait_until("shares queued while down", lambda: rig.dispatch().pending >= 3)
        queued = rig.dispatch().pending
        await local_pool.start()  # same port, sessions kept: the daemon resumes
        await rig.wait_until(
            "reconnected and queue sent", lambda: local_pool.connections > connections
        )
        await rig.wait_for_shares(local_pool, queued)
        rig.freeze_chains()
        await rig.wait_until("every reported nonce settled", lambda: _settled(rig))
        assert await rig.stop() == 0
    snap = _assert_no_share_lost(rig, local_pool, local_pool.difficulty)
    # Queued shares were sent only once the resumed session had its job: none was
    # refused locally as "job unknown". A share the pool judged just before it died,
    # whose reply was lost, is resent and refused as a duplicate: that is the only
    # reject allowed, and it is counted.
    assert all(r.reason == "duplicate share" for r in local_pool.rejected)
    assert snap.rejected == len(local_pool.rejected)
    assert set(snap.lost_by_reason) <= {LOST_CLEAN_JOBS}


def _pool_accepted(rig: Rig, index: int) -> int:
    return rig.dispatch().pools[index].shares.accepted if len(rig.dispatch().pools) > index else 0


async def test_client_reconnect_to_the_same_host_is_followed(
    mining_rig: RigFactory, local_pool: LocalPool
) -> None:
    async with mining_rig([local_pool]) as rig:
        await rig.wait_for_shares(local_pool, 3)
        connections = local_pool.connections
        await local_pool.request_reconnect("127.0.0.1", local_pool.port, 0)
        await rig.wait_until("reconnected", lambda: local_pool.connections > connections)
        await rig.wait_for_shares(local_pool, 3)
        assert await rig.stop() == 0
    snap = rig.dispatch()
    assert local_pool.rejected == []
    assert snap.rejected == 0
    assert snap.accepted == len(_accepted_keys(local_pool))
    assert snap.balanced


async def test_failover_to_the_backup_and_back_to_the_primary(
    mining_rig: RigFactory, pool_factory: PoolFactory
) -> None:
    primary, backup = await pool_factory(), await pool_factory()
    policy = {
        "connect_timeout": 1.0,
        "backoff_initial": 0.2,
        "backoff_max": 0.4,
        # the keys that time the return to the primary, short for the test
        "primary_probe_interval": 0.3,
        "return_to_primary_after": 1.0,
    }
    async with mining_rig([primary, backup], policy=policy) as rig:
        await rig.wait_for_shares(primary, 3)
        port = primary.port
        await primary.stop()
        await rig.wait_until("on the backup", lambda: rig.dispatch().active_pool == 1)
        await rig.wait_for_shares(backup, 3)
        primary.port = port
        await primary.start()
        await rig.wait_until("back on the primary", lambda: rig.dispatch().active_pool == 0)
        await rig.wait_for_shares(primary, 3)
        assert await rig.stop() == 0
    snap = rig.dispatch()
    assert primary.rejected == backup.rejected == []
    assert snap.rejected == 0
    assert snap.pools[0].shares.accepted == len(_accepted_keys(primary))
    assert snap.pools[1].shares.accepted == len(_accepted_keys(backup))
    assert snap.accepted == snap.pools[0].shares.accepted + snap.pools[1].shares.accepted
    # Shares that could not follow a switch are counted lost with why, never dropped.
    assert set(snap.lost_by_reason) <= {LOST_POOL_SWITCHED, LOST_STALE}
    assert snap.balanced


async def test_a_silent_pool_is_detected_and_the_backup_takes_over(
    mining_rig: RigFactory, pool_factory: PoolFactory
) -> None:
    quiet, backup = await pool_factory(), await pool_factory()
    policy = {**FAST_POLICY, "silence_timeout": 1.0}
    async with mining_rig([quiet, backup], policy=policy) as rig:
        await rig.wait_for_shares(quiet, 2)
        quiet.silent = True  # connected, reads everything, answers nothing
        await rig.wait_until("on the backup", lambda: rig.dispatch().active_pool == 1)
        await rig.wait_for_shares(backup, 3)
        status = rig.snapshot().pools[0]
        assert await rig.stop() == 0
    assert "silent" in status.last_error
    assert status.failures >= 1
    assert backup.rejected == []
    assert rig.dispatch().balanced


def _tls_pool(ca: trustme.CA, pool_factory: PoolFactory) -> Awaitable[LocalPool]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    return pool_factory(ssl_context=server)


async def test_tls_pool_with_a_trusted_test_ca(
    mining_rig: RigFactory, pool_factory: PoolFactory, tmp_path: Path
) -> None:
    ca = trustme.CA()
    pool = await _tls_pool(ca, pool_factory)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    assert pool.url.startswith("stratum+ssl://")
    async with mining_rig([pool], pool_options=[f'ca_file = "{ca_file}"']) as rig:
        await rig.wait_for_shares(pool, 3)
        assert await rig.stop() == 0
    assert pool.rejected == []
    assert rig.dispatch().accepted == len(pool.accepted)


async def test_tls_pool_with_an_untrusted_certificate_is_refused(
    mining_rig: RigFactory, pool_factory: PoolFactory, tmp_path: Path
) -> None:
    trusted, impostor = trustme.CA(), trustme.CA()
    pool = await _tls_pool(impostor, pool_factory)
    ca_file = tmp_path / "ca.pem"
    trusted.cert_pem.write_to_path(str(ca_file))
    with capture_logs() as logs:
        async with mining_rig([pool], pool_options=[f'ca_file = "{ca_file}"']) as rig:
            await rig.wait_until("refused twice", lambda: rig.snapshot().pools[0].failures >= 2)
            status = rig.snapshot().pools[0]
            snap = rig.dispatch()
            work = [c.work_sent for c in rig.snapshot().chains]
            assert await rig.stop() == 0
    assert "certificate" in status.last_error, status.last_error
    assert status.state in {"failed", "connecting"}
    assert any("certificate" in str(e.get("error", "")) for e in logs)
    # Nothing was mined for, or sent to, a pool that could not prove who it is.
    assert pool.requests == []
    assert pool.submits == []
    assert (snap.job_count, snap.found_shares, work) == (0, 0, [0, 0])
