"""One history sample: named numbers at one instant, with no I/O.

The API layer fills samples from snapshots (:mod:`stratum_client.api.rest_history`).
Charts draw whatever series a sample holds, so a new sensor's
:class:`~stratum_client.api.model.Reading` (series ``metric{label=value,...}``) needs
no dashboard change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_NAME", "RETENTION", "Sample", "reading_key"]

DEFAULT_NAME: Final = "history.sqlite"
"""The file's name in the directory that holds the energy ledger."""
RETENTION: Final = 24 * 3600.0
"""Seconds of samples kept."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Series values at Unix time ``when``."""

    when: float
    series: dict[str, float] = field(default_factory=dict)


def reading_key(metric: str, labels: tuple[tuple[str, str], ...]) -> str:
    """``temperature_celsius{board=hat,sensor=asic}``: one series per labelled reading."""
    inner = ",".join(f"{name}={value}" for name, value in labels)
    return f"{metric}{{{inner}}}" if inner else metric
