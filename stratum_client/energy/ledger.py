"""The energy and carbon ledger: one row per device per interval, kept in SQLite.

:class:`IntervalAccumulator` is sans-IO: it integrates the power samples it is given
(time passed in, wall-clock seconds) into fixed intervals aligned to multiples of the
interval length, splitting each one into surplus-sourced and grid-sourced energy.
Integration is **left-Riemann (sample and hold)**: a sample's power holds until the next
sample. The governor changes power in steps, at the instants it decides, so holding is
exact for modelled power, where a trapezoid would smear every step over a whole sample
gap. A sample is held for at most ``max_hold`` seconds, so a stalled daemon does not
bill a frozen reading for hours.

Split rule: at every instant the miners together draw ``P`` and the surplus available to
them is ``S``; ``min(P, S)`` is surplus-sourced, the rest comes from the grid, shared
between devices in proportion to their draw. Grid energy × carbon intensity gives grams
of CO2; surplus energy is counted at ``surplus_g_per_kwh`` (0 by default).

:class:`Ledger` stores rows in SQLite, WAL mode, ``synchronous=FULL``, one transaction
per closed interval. WAL makes a commit a sequential append that a crash cannot tear;
FULL fsyncs the WAL at every commit, so even a power cut (likely on a solar site) loses
at most the interval still being accumulated. NORMAL would only survive a process crash,
and could lose every commit since the last checkpoint on power loss. At one commit a
minute, the fsync costs nothing. Triggers reject UPDATE and DELETE: the table is a log.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

from stratum_client.energy.power import PowerSample
from stratum_client.errors import LedgerError

__all__ = [
    "HASHES_PER_DIFFICULTY",
    "SCHEMA_VERSION",
    "IntervalAccumulator",
    "Ledger",
    "LedgerRow",
    "Totals",
]

SCHEMA_VERSION = 1
HASHES_PER_DIFFICULTY = 2**32
"""Expected hashes per nonce at difficulty 1."""
_JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One device over one interval (times are Unix seconds)."""

    start: float
    end: float
    device: str
    energy_kwh: float
    surplus_kwh: float
    grid_kwh: float
    carbon_g: float
    carbon_unknown_kwh: float
    """Grid energy drawn while no carbon intensity was known (not in ``carbon_g``)."""
    measured_kwh: float
    """Part of ``energy_kwh`` from a power reading rather than the model."""
    run_s: float
    shares: int
    share_difficulty: float
    """Sum of the accepted shares' pool difficulty."""
    hashes: float
    """Nonces × ticket difficulty × 2³²: the work the chips did."""
    mode: str
    reason: str


@dataclass(slots=True)
class _Sums:
    energy: float = 0.0
    surplus: float = 0.0
    grid: float = 0.0
    carbon: float = 0.0
    carbon_unknown: float = 0.0
    measured: float = 0.0
    run_s: float = 0.0
    shares: int = 0
    share_difficulty: float = 0.0
    hashes: float = 0.0
    reason: str = ""


class IntervalAccumulator:
    """Integrates power samples into ledger rows; sans-IO (time is an argument)."""

    def __init__(
        self,
        *,
        interval: float = 60.0,
        mode: str = "",
        surplus_g_per_kwh: float = 0.0,
        default_grid_g_per_kwh: float | None = None,
        max_hold: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.mode = mode
        self.surplus_g_per_kwh = surplus_g_per_kwh
        self.default_grid_g_per_kwh = default_grid_g_per_kwh
        self.max_hold = interval if max_hold is None else max_hold
        self._start: float | None = None
        self._end = math.inf
        self._last: float | None = None
        self._held: Mapping[str, PowerSample] = {}
        self._surplus: float | None = None
        self._intensity: float | None = None
        self._sums: dict[str, _Sums] = {}

    def sample(
        self,
        now: float,
        devices: Mapping[str, PowerSample],
        surplus_w: float | None,
        intensity_g_per_kwh: float | None,
    ) -> list[LedgerRow]:
        """Integrate the previous sample up to ``now``; return rows of intervals that closed."""
        rows: list[LedgerRow] = []
        if self._last is None:
            self._begin(self._floor(now), first=now)
        elif now < self._last:
            rows = self._emit(self._last)
            self._begin(self._floor(now), first=now)
        else:
            rows = self._advance(now)
        self._last = now
        self._held, self._surplus, self._intensity = dict(devices), surplus_w, intensity_g_per_kwh
        for name, sample in devices.items():
            self._sums.setdefault(name, _Sums()).reason = sample.reason
        return rows

    def nonce(self, device: str, ticket_difficulty: float, count: int = 1) -> None:
        """Count verified nonces: the work done, independent of pool difficulty."""
        self._sums.setdefault(device, _Sums()).hashes += (
            count * ticket_difficulty * HASHES_PER_DIFFICULTY
        )

    def share(self, device: str, difficulty: float) -> None:
        """Count one share the pool accepted."""
        sums = self._sums.setdefault(device, _Sums())
        sums.shares += 1
        sums.share_difficulty += difficulty

    def shares(self, device: str, count: int, difficulty_sum: float) -> None:
        """Count ``count`` accepted shares at once (the daemon reads counters, not events)."""
        sums = self._sums.setdefault(device, _Sums())
        sums.shares += count
        sums.share_difficulty += difficulty_sum

    def close(self, now: float) -> list[LedgerRow]:
        """Integrate up to ``now`` and return every open row (shutdown)."""
        if self._last is None:
            return []
        rows = self._advance(max(now, self._last))
        rows += self._emit(max(now, self._last))
        self._last, self._start = None, None
        return rows

    def _floor(self, t: float) -> float:
        return math.floor(t / self.interval) * self.interval

    def _begin(self, boundary: float, first: float | None = None) -> None:
        self._start = boundary if first is None else first
        self._end = boundary + self.interval
        self._sums = {name: _Sums(reason=s.reason) for name, s in self._sums.items()}

    def _advance(self, now: float) -> list[LedgerRow]:
        rows: list[LedgerRow] = []
        assert self._last is not None
        t, hold_end = self._last, self._last + self.max_hold
        while now >= self._end:
            self._integrate(t, min(self._end, hold_end))
            rows += self._emit(self._end)
            t = self._end
            self._begin(self._end if hold_end > self._end else self._floor(now))
        self._integrate(t, min(now, hold_end))
        return rows

    def _integrate(self, t0: float, t1: float) -> None:
        seconds = t1 - t0
        if seconds <= 0 or not self._held:
            return
        watts = {name: max(sample.watts, 0.0) for name, sample in self._held.items()}
        total = sum(watts.values())
        clean = min(total, max(self._surplus or 0.0, 0.0))
        clean_share = clean / total if total > 0 else 0.0
        intensity = self._intensity if self._intensity is not None else self.default_grid_g_per_kwh
        for name, sample in self._held.items():
            sums = self._sums.setdefault(name, _Sums())
            energy = watts[name] * seconds  # a negative reading (sign mix-up) counts as 0
            surplus = energy * clean_share
            grid = energy - surplus
            sums.energy += energy
            sums.surplus += surplus
            sums.grid += grid
            sums.carbon += surplus / _JOULES_PER_KWH * self.surplus_g_per_kwh
            if intensity is None:
                sums.carbon_unknown += grid
            else:
                sums.carbon += grid / _JOULES_PER_KWH * intensity
            sums.measured += energy if sample.measured else 0.0
            sums.run_s += seconds if sample.running else 0.0

    def _emit(self, end: float) -> list[LedgerRow]:
        start = self._start if self._start is not None else end
        counted = any(s.shares or s.hashes for s in self._sums.values())
        if end <= start and not counted:
            return []
        end = max(end, start)
        return [
            LedgerRow(
                start=start,
                end=end,
                device=name,
                energy_kwh=s.energy / _JOULES_PER_KWH,
                surplus_kwh=s.surplus / _JOULES_PER_KWH,
                grid_kwh=s.grid / _JOULES_PER_KWH,
                carbon_g=s.carbon,
                carbon_unknown_kwh=s.carbon_unknown / _JOULES_PER_KWH,
                measured_kwh=s.measured / _JOULES_PER_KWH,
                run_s=s.run_s,
                shares=s.shares,
                share_difficulty=s.share_difficulty,
                hashes=s.hashes,
                mode=self.mode,
                reason=s.reason,
            )
            for name, s in sorted(self._sums.items())
        ]


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a range of rows, computed by SQL; derived ratios are None when undefined."""

    intervals: int
    first_start: float | None
    last_end: float | None
    energy_kwh: float
    surplus_kwh: float
    grid_kwh: float
    carbon_g: float
    carbon_unknown_kwh: float
    measured_kwh: float
    run_s: float
    shares: int
    share_difficulty: float
    hashes: float

    @property
    def terahashes(self) -> float:
        return self.hashes / 1e12

    @property
    def clean_pct(self) -> float | None:
        return 100.0 * self.surplus_kwh / self.energy_kwh if self.energy_kwh > 0 else None

    @property
    def j_per_th(self) -> float | None:
        th = self.terahashes
        return self.energy_kwh * _JOULES_PER_KWH / th if th > 0 else None

    @property
    def g_per_th(self) -> float | None:
        th = self.terahashes
        return self.carbon_g / th if th > 0 else None

    @property
    def g_per_share(self) -> float | None:
        return self.carbon_g / self.shares if self.shares else None

    def as_dict(self) -> dict[str, object]:
        """Stored sums plus derived figures (for JSON, CSV and MQTT)."""
        derived = ("terahashes", "clean_pct", "j_per_th", "g_per_th", "g_per_share")
        return {**asdict(self), **{name: getattr(self, name) for name in derived}}


_COLUMNS = tuple(f.name for f in fields(LedgerRow))
_SUMMED = tuple(f.name for f in fields(Totals))[3:]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intervals (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL, "end" REAL NOT NULL, device TEXT NOT NULL,
    energy_kwh REAL NOT NULL CHECK (energy_kwh >= 0),
    surplus_kwh REAL NOT NULL, grid_kwh REAL NOT NULL, carbon_g REAL NOT NULL,
    carbon_unknown_kwh REAL NOT NULL, measured_kwh REAL NOT NULL, run_s REAL NOT NULL,
    shares INTEGER NOT NULL, share_difficulty REAL NOT NULL, hashes REAL NOT NULL,
    mode TEXT NOT NULL, reason TEXT NOT NULL,
    CHECK ("end" >= start)
);
CREATE INDEX IF NOT EXISTS intervals_start ON intervals (start);
CREATE TRIGGER IF NOT EXISTS intervals_no_update BEFORE UPDATE ON intervals
    BEGIN SELECT RAISE(ABORT, 'the energy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS intervals_no_delete BEFORE DELETE ON intervals
    BEGIN SELECT RAISE(ABORT, 'the energy ledger is append-only'); END;
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""
"""Version 1; bump :data:`SCHEMA_VERSION` and add a migration when this changes."""
_COLUMN_LIST = ", ".join(f'"{c}"' for c in _COLUMNS)
_MARKS = ", ".join("?" * len(_COLUMNS))
# S608: every name spliced into these statements is a module constant; values are bound.
_INSERT = f"INSERT INTO intervals ({_COLUMN_LIST}) VALUES ({_MARKS})"  # noqa: S608
_SELECT_ROWS = f"SELECT {_COLUMN_LIST} FROM intervals"  # noqa: S608
_SELECT_SUMS = 'SELECT {key}, COUNT(*), MIN(start), MAX("end"), ' + ", ".join(
    f'COALESCE(SUM("{c}"), 0)' for c in _SUMMED
)


class Ledger:
    """An append-only SQLite ledger; one writer (the daemon), any number of readers.

    Calls are blocking. The daemon appends on its event loop, in the control step that
    closed the interval (a commit is one small WAL append), so nothing closed waits in a
    queue when the process is killed.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            self._db = self._connect()
            self._check_schema()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot open the energy ledger ({exc})") from exc

    @classmethod
    def open_readonly(cls, path: str | Path) -> Ledger:
        """Open for reports; never creates or changes the file."""
        return cls(path, readonly=True)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.is_file():
                raise LedgerError(f"{self.path}: no energy ledger here")
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"{self.path}: cannot enable WAL mode (got {mode})")
            db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _check_schema(self) -> None:
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master")}
        if not tables and not self.readonly:
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            return
        row = None
        if "meta" in tables:
            query = "SELECT value FROM meta WHERE key = 'schema_version'"
            row = self._db.execute(query).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: not an energy ledger (no schema version)")
        if int(row[0]) > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path}: ledger schema {row[0]} is newer than this program "
                f"understands ({SCHEMA_VERSION}); upgrade stratum-client"
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def append(self, row: LedgerRow) -> None:
        """Store one row durably."""
        self.append_many([row])

    def append_many(self, rows: Iterable[LedgerRow]) -> None:
        """Store rows in one transaction: all of them survive a crash, or none."""
        values = [tuple(getattr(row, c) for c in _COLUMNS) for row in rows]
        if not values:
            return
        try:
            with self._transaction():
                self._db.executemany(_INSERT, values)
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot append to the energy ledger ({exc})") from exc

    def rows(
        self, since: float | None = None, until: float | None = None, device: str | None = None
    ) -> list[LedgerRow]:
        """Rows whose interval starts in ``[since, until)``, in insertion order."""
        where, params = _where(since, until, device)
        query = f"{_SELECT_ROWS} {where} ORDER BY id"
        return [LedgerRow(*cast("tuple[Any, ...]", v)) for v in self._query(query, params)]

    def totals(
        self, since: float | None = None, until: float | None = None, device: str | None = None
    ) -> Totals:
        """SQL sums over the same rows :meth:`rows` returns."""
        return self._totals(since, until, device)[None]

    def totals_by_device(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, Totals]:
        """One :class:`Totals` per device, by name."""
        by_device = self._totals(since, until, None, group=True)
        return {str(name): totals for name, totals in by_device.items()}

    def _totals(
        self, since: float | None, until: float | None, device: str | None, group: bool = False
    ) -> dict[object, Totals]:
        where, params = _where(since, until, device)
        key, tail = ("device", "GROUP BY device ORDER BY device") if group else ("NULL", "")
        query = f"{_SELECT_SUMS.format(key=key)} FROM intervals {where} {tail}"
        rows = self._query(query, params)
        return {v[0]: Totals(*cast("tuple[Any, ...]", v[1:])) for v in rows}

    def _query(self, query: str, params: list[object]) -> list[tuple[object, ...]]:
        try:
            return list(self._db.execute(query, params))
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot read the energy ledger ({exc})") from exc

    def integrity_check(self) -> str:
        """SQLite's verdict on the file: ``"ok"`` when sound."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(
    since: float | None, until: float | None, device: str | None
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for clause, value in (("start >= ?", since), ("start < ?", until), ("device = ?", device)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
