"""Hashrates in the units other tools read, without rounding small miners away.

Dashboards read fixed units (cgminer ``MHS``/``GHS``, AxeOS and Home Assistant GH/s), and
the usual "two decimals" turn a USB stick's few hundred MH/s, or an emulated chain's
kH/s, into 0.0. Every rate here keeps at least ``SIGNIFICANT`` significant figures.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["GIGA", "MEGA", "SIGNIFICANT", "in_unit"]

MEGA: Final = 1e6
GIGA: Final = 1e9
SIGNIFICANT: Final = 4


def in_unit(hashes_per_second: float, unit: float, digits: int = 2) -> float:
    """``hashes_per_second / unit`` to ``digits`` decimals, or more when that would
    leave fewer than :data:`SIGNIFICANT` significant figures; 0.0 if not finite."""
    value = hashes_per_second / unit
    if not math.isfinite(value):
        return 0.0
    if value == 0.0:
        return 0.0
    magnitude = math.floor(math.log10(abs(value)))
    return round(value, max(digits, SIGNIFICANT - 1 - magnitude))
