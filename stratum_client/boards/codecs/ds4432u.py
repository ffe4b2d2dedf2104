"""DS4432U+ current DAC (0x48 on the older Bitaxe revisions) trimming a TPS40305's output.

The DAC sinks or sources current into the regulator's feedback node, moving the output
from its nominal 1.451 V (code 0). Resistor values and the full-scale current are the
board's: 3320 Ω and 4750 Ω around a 0.6 V reference, 98.921 µA full scale over 127 steps.
Bit 7 of the code selects sourcing (output below nominal).
"""

from __future__ import annotations

import math

__all__ = ["ADDRESS", "MAX_VOLTS", "MIN_VOLTS", "NOMINAL_VOLTS", "OUT0_REGISTER", "trim_code"]

ADDRESS = 0x48
OUT0_REGISTER = 0xF8
NOMINAL_VOLTS = 1.451
MIN_VOLTS = 0.046
MAX_VOLTS = 2.39
_VREF, _R_TOP, _R_BOTTOM = 0.6, 4750.0, 3320.0
_FULL_SCALE_A = 98.921e-6
_STEPS = 127


def trim_code(volts: float) -> int:
    """The OUT0 code for an output of ``volts``; ValueError outside 0.046–2.39 V."""
    if not (math.isfinite(volts) and MIN_VOLTS <= volts <= MAX_VOLTS):
        raise ValueError(f"{volts} V is outside the DS4432U trim range {MIN_VOLTS}..{MAX_VOLTS}")
    current = _VREF / _R_BOTTOM - (volts - _VREF) / _R_TOP
    magnitude = math.ceil(abs(current / _FULL_SCALE_A * _STEPS) - 1e-9)
    code = min(magnitude, _STEPS)
    return code | 0x80 if volts < NOMINAL_VOLTS else code
