"""Hashrate windows and share counters."""

from __future__ import annotations

import pytest

from stratum_client.daemon.stats import (
    HASHES_PER_DIFF1,
    HashrateMeter,
    HashrateReading,
    NonceClass,
    NonceCounts,
    NonceStats,
    ShareStats,
    WorkerStats,
)


def test_steady_nonces_give_the_expected_rate() -> None:
    meter = HashrateMeter(started_at=0.0)
    # one difficulty-256 nonce per second for 20 minutes
    for second in range(1, 1201):
        meter.add(float(second), 256.0)
    expected = 256 * HASHES_PER_DIFF1
    rates = meter.rates(1200.0)
    for window in ("1m", "5m", "15m"):
        assert rates[window] == pytest.approx(expected, rel=0.1)
    assert meter.average(1200.0) == pytest.approx(expected, rel=0.01)


def test_rate_falls_to_zero_when_nonces_stop() -> None:
    meter = HashrateMeter(started_at=0.0)
    for second in range(1, 301):
        meter.add(float(second), 1.0)
    assert meter.rate(300.0, 60.0) > 0
    assert meter.rate(400.0, 60.0) == 0.0
    assert meter.rate(400.0, 300.0) > 0


def test_short_uptime_uses_elapsed_time_not_the_window() -> None:
    meter = HashrateMeter(started_at=100.0)
    meter.add(110.0, 1.0)
    assert meter.rate(110.0, 900.0) == pytest.approx(HASHES_PER_DIFF1 / 10.0)


def test_memory_is_bounded_by_the_longest_window() -> None:
    meter = HashrateMeter(started_at=0.0)
    for tick in range(100_000):
        meter.add(tick * 0.5, 1.0)
    assert len(meter._buckets) <= 900 / 5 + 2


def test_share_stats_count_reasons() -> None:
    stats = ShareStats()
    stats.record_found(1000.0)
    stats.record_accepted(512.0, now=1.0)
    stats.record_rejected(512.0, "job not found", stale=True)
    stats.record_rejected(512.0, "duplicate share")
    stats.record_lost("job expired while pool was down")
    assert (stats.accepted, stats.rejected, stats.stale, stats.lost) == (1, 2, 1, 1)
    assert stats.rejected_by_reason["duplicate share"] == 1
    assert stats.best_share == 1000.0


def test_share_stats_snapshot_is_a_frozen_copy() -> None:
    stats = ShareStats()
    stats.record_found(700.0, block=True)
    stats.record_rejected(700.0, "low difficulty")
    frozen = stats.snapshot()
    stats.record_rejected(700.0, "low difficulty")
    stats.record_lost("pending queue full")
    assert (frozen.found, frozen.rejected, frozen.blocks_found, frozen.lost) == (1, 1, 1, 0)
    assert frozen.rejected_by_reason == {"low difficulty": 1}
    with pytest.raises(TypeError):
        frozen.rejected_by_reason["x"] = 1  # type: ignore[index]
    assert stats.snapshot().lost_by_reason == {"pending queue full": 1}


def test_meter_reading_matches_the_windows() -> None:
    meter = HashrateMeter(started_at=0.0)
    for second in range(1, 61):
        meter.add(float(second), 2.0)
    reading = meter.reading(60.0)
    assert reading.m1 == pytest.approx(meter.rate(60.0, 60.0))
    assert reading.average == pytest.approx(meter.average(60.0))
    assert reading.total_hashes == 120 * HASHES_PER_DIFF1
    assert HashrateReading() == HashrateReading(0.0, 0.0, 0.0, 0.0, 0.0)


def test_nonce_stats_count_every_class_and_keep_the_best_real_nonce() -> None:
    stats = NonceStats()
    for kind in NonceClass:
        stats.record(kind, 10.0 if kind is not NonceClass.DUPLICATE else 1e9, now=3.0)
    counts = stats.snapshot()
    assert counts == NonceCounts(1, 1, 1, 1, 1, 1)
    assert counts.total == stats.total == len(NonceClass)
    assert stats.best_difficulty == 10.0  # a re-emitted nonce proves no new work
    assert stats.last_nonce_at == 3.0


def test_worker_stats_meter_only_new_work_at_ticket_difficulty() -> None:
    worker = WorkerStats()
    assert worker.snapshot(5.0).hashrate == HashrateReading()
    worker.record_nonce(NonceClass.HW_ERROR, 0.0, 256.0, now=1.0)
    worker.record_nonce(NonceClass.DUPLICATE, 900.0, 256.0, now=1.0)
    assert worker.meter is None
    worker.record_nonce(NonceClass.BELOW_DIFFICULTY, 300.0, 256.0, now=2.0)
    worker.record_nonce(NonceClass.SHARE, 9000.0, 256.0, now=3.0)
    snap = worker.snapshot(10.0)
    assert snap.hashrate.total_hashes == 2 * 256.0 * HASHES_PER_DIFF1
    assert snap.nonces.total == 4
    assert snap.best_difficulty == 9000.0
    worker.start(100.0)  # already started: the meter keeps its start time
    assert worker.meter is not None
    assert worker.meter.started_at == 2.0
