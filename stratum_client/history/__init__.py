"""A day of per-minute samples in SQLite, for the dashboard's charts and AxeOS statistics.

:mod:`.sample` is one instant's named series; :mod:`.store` keeps them in
``history.sqlite`` beside the energy ledger.
"""

from __future__ import annotations

from stratum_client.history.sample import DEFAULT_NAME, RETENTION, Sample
from stratum_client.history.store import HistoryStore

__all__ = ["DEFAULT_NAME", "RETENTION", "HistoryStore", "Sample"]
