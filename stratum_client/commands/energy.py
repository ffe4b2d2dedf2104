"""``stratum-client energy report``: what the mining cost in energy and carbon.

Reads the ledger read-only (safe while the daemon writes to it) and prints, per device
and in total: kWh, the clean (surplus-sourced) share, grams of CO2, joules per terahash
and grams of CO2 per terahash and per accepted share. Rows are selected by the start of
their interval: ``--since`` inclusive, ``--until`` exclusive.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stratum_client.config import DaemonConfig
from stratum_client.energy.config import DEFAULT_LEDGER_NAME
from stratum_client.energy.ledger import Ledger, Totals
from stratum_client.errors import InputError

__all__ = ["add_parser", "parse_when", "run"]

DEFAULT_LEDGER = DaemonConfig().state_dir / DEFAULT_LEDGER_NAME
_RELATIVE = re.compile(r"-?\s*(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CSV_FIELDS = (
    "device", "intervals", "first_start", "last_end", "energy_kwh", "surplus_kwh", "grid_kwh",
    "clean_pct", "carbon_g", "carbon_unknown_kwh", "measured_kwh", "run_s", "shares",
    "share_difficulty", "terahashes", "j_per_th", "g_per_th", "g_per_share",
)  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``energy`` and its ``report`` sub-command."""
    parser = subparsers.add_parser(
        "energy",
        help="energy and carbon accounting",
        description="Read the energy ledger the daemon keeps.",
    )
    sub = parser.add_subparsers(dest="energy_command", metavar="SUBCOMMAND", required=True)
    report = sub.add_parser(
        "report",
        help="kWh, clean share, CO2, J/TH and CO2 per TH / share",
        description="Summarise the energy ledger over a time range, per device and in total.",
    )
    # Let "--since -24h" through: argparse would otherwise take "-24h" for an option. Only
    # this sub-parser's notion of a negative number changes; it has no options like that.
    report._negative_number_matcher = re.compile(r"^-\d+(?:\.\d+)?[smhdw]?$|^-\.\d+$")
    report.add_argument(
        "--ledger", type=Path, default=DEFAULT_LEDGER, help="ledger file (default %(default)s)"
    )
    report.add_argument("--since", help="start: ISO date/time (local unless offset) or -24h, -7d")
    report.add_argument("--until", help="end (exclusive), same forms; default now")
    report.add_argument("--device", help="only this device")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.set_defaults(func=run)


def parse_when(flag: str, text: str, now: datetime) -> datetime:
    """``2024-06-01``, ``2024-06-01T12:00+02:00``, ``-24h``, ``-30m``, ``-7d`` or ``now``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            flag, f"{text!r} is not an ISO date/time (2024-06-01T12:00) or an age like -24h"
        ) from None
    return moment.astimezone() if moment.tzinfo is None else moment


def run(args: argparse.Namespace) -> int:
    """Print the report; an empty range is not an error."""
    now = datetime.now(UTC).astimezone()
    since = parse_when("--since", args.since, now) if args.since else None
    until = parse_when("--until", args.until, now) if args.until else now
    if since is not None and since >= until:
        raise InputError(
            "--since", f"{since.isoformat()} is not before --until {until.isoformat()}"
        )
    start = since.timestamp() if since else None
    with Ledger.open_readonly(args.ledger) as ledger:
        total = ledger.totals(start, until.timestamp(), args.device)
        devices = ledger.totals_by_device(start, until.timestamp())
    if args.device is not None:
        devices = {k: v for k, v in devices.items() if k == args.device}
    if total.intervals == 0:
        print(_empty(args, since, until))
        return 0
    formats = {"table": _table, "json": _json, "csv": _csv}
    print(formats[args.format](args.ledger, devices, total))
    return 0


def _empty(args: argparse.Namespace, since: datetime | None, until: datetime) -> str:
    scope = f" for device {args.device!r}" if args.device else ""
    start = since.isoformat(timespec="seconds") if since else "the beginning"
    message = (
        f"no energy recorded{scope} in {args.ledger} from {start} "
        f"to {until.isoformat(timespec='seconds')}"
    )
    if args.format == "json":
        return json.dumps({"message": message, "devices": {}, "total": None}, indent=2)
    return message


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).astimezone().isoformat(timespec="seconds")


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _table(path: Path, devices: dict[str, Totals], total: Totals) -> str:
    lines = [
        f"energy ledger {path}: {_when(total.first_start)} → {_when(total.last_end)}, "
        f"{total.intervals} interval rows",
        "",
        f"{'device':<16}{'kWh':>10}{'clean %':>9}{'grid kWh':>10}{'CO2 g':>10}{'shares':>8}"
        f"{'TH':>12}{'J/TH':>9}{'g/TH':>10}{'g/share':>10}",
    ]
    for name, totals in [*devices.items(), ("TOTAL", total)]:
        lines.append(
            f"{name:<16}{totals.energy_kwh:>10.4f}{_fmt(totals.clean_pct, '.1f'):>9}"
            f"{totals.grid_kwh:>10.4f}{totals.carbon_g:>10.1f}{totals.shares:>8}"
            f"{totals.terahashes:>12.1f}{_fmt(totals.j_per_th, '.1f'):>9}"
            f"{_fmt(totals.g_per_th):>10}{_fmt(totals.g_per_share):>10}"
        )
    if total.carbon_unknown_kwh > 0:
        lines += [
            "",
            f"note: {total.carbon_unknown_kwh:.4f} kWh of grid energy had no carbon intensity "
            "and is not in the CO2 figures",
        ]
    return "\n".join(lines)


def _json(path: Path, devices: dict[str, Totals], total: Totals) -> str:
    document = {
        "ledger": str(path),
        "first_start": _when(total.first_start),
        "last_end": _when(total.last_end),
        "devices": {name: totals.as_dict() for name, totals in devices.items()},
        "total": total.as_dict(),
    }
    return json.dumps(document, indent=2)


def _csv(path: Path, devices: dict[str, Totals], total: Totals) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name, totals in [*devices.items(), ("TOTAL", total)]:
        row = totals.as_dict()
        row.update(device=name, first_start=_when(totals.first_start))
        row["last_end"] = _when(totals.last_end)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue().rstrip("\n")
