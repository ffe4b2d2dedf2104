"""Hashrate windows and share counters."""

from __future__ import annotations

import pytest

from stratum_client.daemon.stats import HASHES_PER_DIFF1, HashrateMeter, ShareStats


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
