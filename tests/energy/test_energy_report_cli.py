"""``stratum-client energy report``: the three formats, ranges, and error handling."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratum_client.cli import main
from stratum_client.commands.energy import parse_when
from stratum_client.energy.ledger import Ledger, LedgerRow
from stratum_client.errors import InputError

NOW = datetime.now(UTC)


def _row(start: datetime, device: str, grid_kwh: float) -> LedgerRow:
    return LedgerRow(
        start=start.timestamp(),
        end=start.timestamp() + 60,
        device=device,
        energy_kwh=0.001,
        surplus_kwh=0.001 - grid_kwh,
        grid_kwh=grid_kwh,
        carbon_g=grid_kwh * 300,
        carbon_unknown_kwh=0.0,
        measured_kwh=0.0,
        run_s=60.0,
        shares=2,
        share_difficulty=8192.0,
        hashes=1e12,
        mode="surplus",
        reason="surplus 30 W",
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "energy.sqlite"
    with Ledger(path) as book:
        old = NOW - timedelta(days=3)
        book.append_many([_row(old + timedelta(minutes=i), "gamma", 0.0) for i in range(10)])
        recent = NOW - timedelta(hours=2)
        book.append_many(
            [
                _row(recent + timedelta(minutes=i), d, 0.0001)
                for i in range(5)
                for d in ("gamma", "ultra")
            ]
        )
    return path


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["energy", "report", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_totals_and_ratios(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = report(capsys, "--ledger", str(ledger), "--since", "-24h", "--format", "json")
    assert status == 0
    document = json.loads(out)
    total = document["total"]
    assert total["intervals"] == 10
    assert total["energy_kwh"] == pytest.approx(0.010)
    assert total["clean_pct"] == pytest.approx(90.0)
    assert total["terahashes"] == pytest.approx(10.0)
    assert total["j_per_th"] == pytest.approx(0.010 * 3.6e6 / 10)
    assert total["g_per_th"] == pytest.approx(0.001 * 300 / 10)
    assert total["g_per_share"] == pytest.approx(0.001 * 300 / 20)
    assert sorted(document["devices"]) == ["gamma", "ultra"]


def test_relative_since_works_with_or_without_equals(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["--since", "-24h"], ["--since=-24h"], ["--since", "24h"]):
        status, out, _ = report(capsys, "--ledger", str(ledger), *args, "--format", "json")
        assert status == 0
        assert json.loads(out)["total"]["intervals"] == 10


def test_table_is_readable(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = report(capsys, "--ledger", str(ledger))
    assert status == 0
    lines = out.splitlines()
    assert "20 interval rows" in lines[0]
    assert lines[2].split()[:4] == ["device", "kWh", "clean", "%"]
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1] == "0.0200"


def test_csv_has_a_row_per_device_and_a_total(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = report(
        capsys, "--ledger", str(ledger), "--since", "-24h", "--device", "ultra", "--format", "csv"
    )
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["device"] for r in rows] == ["ultra", "TOTAL"]
    assert float(rows[1]["energy_kwh"]) == pytest.approx(0.005)
    assert float(rows[1]["clean_pct"]) == pytest.approx(90.0)


def test_until_is_exclusive_and_iso_dates_work(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = (NOW - timedelta(days=1)).isoformat()
    status, out, _ = report(capsys, "--ledger", str(ledger), "--until", until, "--format", "json")
    assert status == 0
    assert json.loads(out)["total"]["intervals"] == 10


def test_empty_range_is_a_clear_message(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = report(capsys, "--ledger", str(ledger), "--since", "-10m")
    assert status == 0
    assert out.startswith("no energy recorded in ")
    status, out, _ = report(capsys, "--ledger", str(ledger), "--since", "-10m", "--format", "json")
    assert json.loads(out)["total"] is None


def test_empty_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fresh.sqlite"
    Ledger(path).close()
    status, out, _ = report(capsys, "--ledger", str(path))
    assert status == 0
    assert "no energy recorded" in out


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_bad_time_is_one_line_naming_the_flag(
    ledger: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    status, out, err = report(capsys, "--ledger", str(ledger), flag, "yesterday-ish")
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"stratum-client energy: error: {flag}: 'yesterday-ish' is not")


def test_since_after_until_is_refused(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = report(capsys, "--ledger", str(ledger), "--since", "-1h", "--until", "-2h")
    assert status == 2
    assert "--since:" in err


def test_missing_ledger_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = report(capsys, "--ledger", str(tmp_path / "none.sqlite"))
    assert status == 2
    assert "no energy ledger here" in err
    assert not (tmp_path / "none.sqlite").exists()


def test_parse_when_forms() -> None:
    now = datetime(2024, 6, 21, 12, 0, tzinfo=UTC)
    assert parse_when("--since", "-24h", now) == now - timedelta(hours=24)
    assert parse_when("--since", "90m", now) == now - timedelta(minutes=90)
    assert parse_when("--since", "-1.5d", now) == now - timedelta(hours=36)
    assert parse_when("--since", "now", now) == now
    assert parse_when("--since", "2024-06-01T00:00:00+02:00", now) == datetime(
        2024, 5, 31, 22, 0, tzinfo=UTC
    )
    assert parse_when("--since", "2024-06-01", now).tzinfo is not None
    with pytest.raises(InputError, match="--until"):
        parse_when("--until", "-24x", now)
