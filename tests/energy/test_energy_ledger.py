"""The ledger: interval integration and splits, SQLite storage, and surviving kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stratum_client.energy.ledger import (
    SCHEMA_VERSION,
    IntervalAccumulator,
    Ledger,
    LedgerRow,
)
from stratum_client.energy.power import PowerSample
from stratum_client.errors import LedgerError

KWH = 3.6e6
T0 = 1_718_928_000.0  # 2024-06-21T00:00:00Z, a minute boundary


def run(watts: float, reason: str = "surplus") -> PowerSample:
    return PowerSample(watts, measured=False, running=watts > 0, reason=reason)


def row(
    start: float, device: str = "gamma", energy_kwh: float = 0.001, **extra: object
) -> LedgerRow:
    values: dict[str, object] = {
        "start": start,
        "end": start + 60.0,
        "device": device,
        "energy_kwh": energy_kwh,
        "surplus_kwh": energy_kwh,
        "grid_kwh": 0.0,
        "carbon_g": 0.0,
        "carbon_unknown_kwh": 0.0,
        "measured_kwh": 0.0,
        "run_s": 60.0,
        "shares": 1,
        "share_difficulty": 1000.0,
        "hashes": 1e12,
        "mode": "surplus",
        "reason": "test",
    }
    values.update(extra)
    return LedgerRow(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- accumulator


def test_left_riemann_holds_each_sample_until_the_next() -> None:
    acc = IntervalAccumulator(interval=60.0, mode="surplus")
    assert acc.sample(T0, {"gamma": run(10.0)}, 100.0, None) == []
    assert acc.sample(T0 + 30, {"gamma": run(20.0)}, 100.0, None) == []
    rows = acc.sample(T0 + 60, {"gamma": run(0.0)}, 100.0, None)
    assert len(rows) == 1
    only = rows[0]
    assert (only.start, only.end, only.device, only.mode) == (T0, T0 + 60, "gamma", "surplus")
    assert only.energy_kwh * KWH == pytest.approx(10 * 30 + 20 * 30)
    assert only.run_s == 60.0
    assert only.reason == "surplus"


def test_intervals_are_aligned_and_split_at_boundaries() -> None:
    acc = IntervalAccumulator(interval=60.0, max_hold=120.0)
    acc.sample(T0 + 50, {"gamma": run(6.0)}, None, None)
    rows = acc.sample(T0 + 130, {"gamma": run(6.0)}, None, None)
    assert [(r.start - T0, r.end - T0) for r in rows] == [(50, 60), (60, 120)]
    assert [r.energy_kwh * KWH for r in rows] == pytest.approx([60.0, 360.0])
    tail = acc.close(T0 + 135)
    assert [(r.start - T0, r.end - T0) for r in tail] == [(120, 135)]
    assert tail[0].energy_kwh * KWH == pytest.approx(6 * 15)


def test_surplus_split_is_proportional_and_carbon_applies_to_grid_only() -> None:
    acc = IntervalAccumulator(interval=60.0, surplus_g_per_kwh=40.0)
    acc.sample(T0, {"a": run(30.0), "b": run(10.0)}, 20.0, 300.0)
    rows = {r.device: r for r in acc.close(T0 + 60)}
    a, b = rows["a"], rows["b"]
    assert a.energy_kwh * KWH == pytest.approx(1800)
    assert a.surplus_kwh * KWH == pytest.approx(900)  # half of the draw was covered
    assert b.surplus_kwh * KWH == pytest.approx(300)
    assert a.grid_kwh + a.surplus_kwh == pytest.approx(a.energy_kwh)
    assert a.carbon_g == pytest.approx(900 / KWH * 300 + 900 / KWH * 40)
    assert a.carbon_unknown_kwh == 0.0


def test_unknown_surplus_counts_as_grid_and_unknown_intensity_is_kept_apart() -> None:
    acc = IntervalAccumulator(interval=60.0)
    acc.sample(T0, {"a": run(10.0)}, None, None)
    (only,) = acc.close(T0 + 60)
    assert only.grid_kwh == pytest.approx(only.energy_kwh)
    assert only.carbon_g == 0.0
    assert only.carbon_unknown_kwh == pytest.approx(only.energy_kwh)
    fallback = IntervalAccumulator(interval=60.0, default_grid_g_per_kwh=400.0)
    fallback.sample(T0, {"a": run(10.0)}, None, None)
    (row_,) = fallback.close(T0 + 60)
    assert row_.carbon_g == pytest.approx(600 / KWH * 400)


def test_shares_and_hashes_are_counted_in_the_open_interval() -> None:
    acc = IntervalAccumulator(interval=60.0)
    acc.sample(T0, {"a": run(10.0)}, None, None)
    acc.nonce("a", 256.0, count=3)
    acc.share("a", 1024.0)
    acc.share("a", 2048.0)
    (first,) = acc.sample(T0 + 60, {"a": run(10.0)}, None, None)
    assert first.hashes == 3 * 256 * 2**32
    assert (first.shares, first.share_difficulty) == (2, 3072.0)
    (second,) = acc.close(T0 + 61)
    assert (second.shares, second.hashes) == (0, 0.0)


def test_shares_counted_in_bulk_match_one_by_one() -> None:
    bulk, single = IntervalAccumulator(interval=60.0), IntervalAccumulator(interval=60.0)
    for acc in (bulk, single):
        acc.sample(T0, {"a": run(10.0)}, None, None)
    bulk.shares("a", 3, 1024.0 + 2048.0 + 512.0)
    for difficulty in (1024.0, 2048.0, 512.0):
        single.share("a", difficulty)
    (row_,) = bulk.close(T0 + 30)
    assert row_ == single.close(T0 + 30)[0]
    assert (row_.shares, row_.share_difficulty) == (3, 3584.0)


def test_a_stalled_sampler_does_not_bill_frozen_power() -> None:
    acc = IntervalAccumulator(interval=60.0, max_hold=5.0)
    acc.sample(T0, {"a": run(10.0)}, None, None)
    rows = acc.sample(T0 + 600, {"a": run(10.0)}, None, None)
    assert len(rows) == 1, "uncovered intervals are skipped"
    assert rows[0].energy_kwh * KWH == pytest.approx(50.0)


def test_clock_stepping_back_closes_the_interval() -> None:
    acc = IntervalAccumulator(interval=60.0)
    acc.sample(T0 + 10, {"a": run(10.0)}, None, None)
    acc.share("a", 512.0)
    rows = acc.sample(T0 + 5, {"a": run(10.0)}, None, None)
    assert [(r.start - T0, r.end - T0, r.shares) for r in rows] == [(10, 10, 1)], "no share lost"
    assert acc.close(T0 + 20)[0].energy_kwh * KWH == pytest.approx(150.0)


# --------------------------------------------------------------------------- storage


def test_ledger_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.append(row(T0))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta == {"schema_version": str(SCHEMA_VERSION)}
    db.close()


def test_rows_and_totals_round_trip(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.append_many([row(T0 + 60 * i, device=d) for i in range(10) for d in ("a", "b")])
        assert len(ledger.rows()) == 20
        assert [r.start for r in ledger.rows(T0 + 120, T0 + 240, "a")] == [T0 + 120, T0 + 180]
        totals = ledger.totals(T0 + 120, T0 + 240)
        assert totals.intervals == 4
        assert totals.energy_kwh == pytest.approx(0.004)
        assert (totals.first_start, totals.last_end) == (T0 + 120, T0 + 240)
        assert totals.shares == 4
        assert totals.clean_pct == pytest.approx(100.0)
        assert totals.j_per_th == pytest.approx(0.004 * KWH / 4)
        by_device = ledger.totals_by_device()
        assert sorted(by_device) == ["a", "b"]
        assert by_device["a"].intervals == 10


def test_empty_totals_have_no_ratios(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        totals = ledger.totals()
    assert totals.intervals == 0
    assert (totals.clean_pct, totals.j_per_th, totals.g_per_share) == (None, None, None)


def test_the_ledger_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        ledger.append(row(T0))
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE intervals SET energy_kwh = 0")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM intervals")
    db.close()


def test_read_only_open_never_creates(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no energy ledger here"):
        Ledger.open_readonly(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    with Ledger.open_readonly(path) as reader, pytest.raises(LedgerError, match="cannot append"):
        reader.append(row(T0))


def test_foreign_and_newer_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE stuff (x)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="not an energy ledger"):
        Ledger(other)
    text = tmp_path / "text.sqlite"
    text.write_text("hello, not a database " * 100)
    with pytest.raises(LedgerError, match="cannot open"):
        Ledger.open_readonly(text)
    newer = tmp_path / "newer.sqlite"
    Ledger(newer).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="newer than this program"):
        Ledger.open_readonly(newer)


def test_a_bad_row_is_refused_whole(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(LedgerError, match="cannot append"):
            ledger.append_many([row(T0), row(T0 + 60, energy_kwh=-1.0)])
        assert ledger.rows() == []


# --------------------------------------------------------------------------- kill -9

WRITER = textwrap.dedent(
    """
    import sys, time
    from stratum_client.energy.ledger import IntervalAccumulator, Ledger
    from stratum_client.energy.power import PowerSample

    ledger = Ledger(sys.argv[1])
    acc = IntervalAccumulator(interval=0.05, mode="surplus")
    t = 1_718_928_000.0
    written = 0
    while True:
        t += 0.01
        rows = acc.sample(t, {"gamma": PowerSample(16.5, running=True)}, 20.0, 250.0)
        if rows:
            ledger.append_many(rows)
            written += len(rows)
            print(written, flush=True)
        time.sleep(0.01)
    """
)


@pytest.mark.parametrize("run_for", [0.4, 0.75, 1.3])
def test_kill_9_loses_at_most_the_open_interval(tmp_path: Path, run_for: float) -> None:
    path = tmp_path / "ledger.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged = 0
    deadline = time.monotonic() + run_for
    try:
        while time.monotonic() < deadline or acknowledged < 3:
            line = writer.stdout.readline()
            assert line, "the writer died on its own"
            acknowledged = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    with Ledger.open_readonly(path) as reader:
        assert reader.integrity_check() == "ok"
        rows = reader.rows()
        assert len(rows) >= acknowledged
        totals = reader.totals()
    assert totals.energy_kwh == pytest.approx(sum(r.energy_kwh for r in rows))
    with Ledger(path) as again:
        again.append(row(T0 + 10_000))
        assert len(again.rows()) == len(rows) + 1
