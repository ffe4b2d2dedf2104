"""The energy and carbon ledger: :class:`LedgerRow` intervals kept in SQLite.

The rows come from :class:`~stratum_client.energy.intervals.IntervalAccumulator`
(re-exported here). :class:`Ledger` stores them in SQLite, WAL mode,
``synchronous=FULL``, one transaction per closed interval. WAL makes a commit a
sequential append that a crash cannot tear; FULL fsyncs the WAL at every commit, so even
a power cut (likely on a solar site) loses at most the interval still being accumulated.
NORMAL would only survive a process crash, and could lose every commit since the last
checkpoint on power loss. At one commit a minute, the fsync costs nothing. Triggers
reject UPDATE and DELETE: the table is a log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

from stratum_client.energy.intervals import (
    HASHES_PER_DIFFICULTY,
    JOULES_PER_KWH,
    IntervalAccumulator,
    LedgerRow,
)
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
        return self.energy_kwh * JOULES_PER_KWH / th if th > 0 else None

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
