"""The history file: one row per minute, a day kept, in SQLite beside the energy ledger.

A row is a Unix time and a JSON object of series (see :mod:`.sample`), so a series a
new board adds is stored without a schema change. Rows older than the retention are
deleted at each write, which keeps the file near its steady size (24 h at one row a
minute is about 1440 rows; ``tests/history`` checks it stays under 5 MB). Unlike the
ledger this is not accounting: WAL with ``synchronous=NORMAL`` survives a crash of the
process, and a power cut may cost the last minutes, which the charts can spare.
Calls are blocking and small (one insert a minute, one indexed range read per chart
refresh), so the daemon makes them on its event loop.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from stratum_client.errors import StratumClientError
from stratum_client.history.sample import RETENTION, Sample

__all__ = ["HistoryError", "HistoryStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (t REAL PRIMARY KEY, series TEXT NOT NULL) WITHOUT ROWID;
"""


class HistoryError(StratumClientError):
    """The history file cannot be opened, read or written."""


class HistoryStore:
    """Append samples, read them back by time; one writer (the daemon)."""

    def __init__(self, path: str | Path, *, retention: float = RETENTION) -> None:
        self.path = Path(path)
        self.retention = retention
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"{self.path}: cannot open the history file ({exc})") from exc

    def append(self, sample: Sample) -> None:
        """Store ``sample`` (replacing one at the same instant) and drop expired rows."""
        series = {k: v for k, v in sample.series.items() if math.isfinite(v)}
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT OR REPLACE INTO samples VALUES (?, ?)",
                    (sample.when, json.dumps(series, separators=(",", ":"))),
                )
                self._db.execute("DELETE FROM samples WHERE t < ?", (sample.when - self.retention,))
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot write the history file ({exc})") from exc

    def samples(self, since: float | None = None) -> list[Sample]:
        """Samples at or after ``since`` (all when None), oldest first."""
        try:
            rows = self._db.execute(
                "SELECT t, series FROM samples WHERE t >= ? ORDER BY t",
                (-math.inf if since is None else since,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot read the history file ({exc})") from exc
        return [Sample(float(t), _decode(text)) for t, text in rows]

    def series(self, since: float | None = None) -> dict[str, list[tuple[float, float]]]:
        """Each series as ``(unix time, value)`` points, for charts."""
        out: dict[str, list[tuple[float, float]]] = {}
        for sample in self.samples(since):
            for name, value in sample.series.items():
                out.setdefault(name, []).append((sample.when, value))
        return out

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _decode(text: str) -> dict[str, float]:
    try:
        decoded = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(k): float(v) for k, v in decoded.items() if isinstance(v, int | float)}
