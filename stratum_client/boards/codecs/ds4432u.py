"""DS4432U+ current DAC (0x48 on the older Bitaxe revisions) trimming a TPS40305's output.

The DAC sinks or sources current into the regulator's feedback node, moving the output
from its nominal 1.451 V (code 0). Resistor values and the full-scale current are the
board's: 3320 Ω and 4750 Ω around a 0.6 V reference, 98.921 µA full scale over 127 steps.
Bit 7 of the code selects sourcing (output below nominal). The code saturates at 127
steps, so the lowest output the DAC reaches is about 0.989 V (code 0xFF) and the highest
about 1.928 V (0x7F), whatever the formula's wider 0.046–2.39 V allows.
"""

from __future__ import annotations

import math

__all__ = [
    "ADDRESS",
    "LOWEST_CODE",
    "MAX_VOLTS",
    "MIN_VOLTS",
    "NOMINAL_VOLTS",
    "OUT0_REGISTER",
    "trim_code",
    "volts_from_code",
]

ADDRESS = 0x48
OUT0_REGISTER = 0xF8
NOMINAL_VOLTS = 1.451
MIN_VOLTS = 0.046
MAX_VOLTS = 2.39
_VREF, _R_TOP, _R_BOTTOM = 0.6, 4750.0, 3320.0
_FULL_SCALE_A = 98.921e-6
_STEPS = 127
LOWEST_CODE = 0x80 | _STEPS
"""Full-scale sourcing: the lowest output the DAC can trim to."""


def trim_code(volts: float) -> int:
    """The OUT0 code for an output of ``volts``; ValueError outside 0.046–2.39 V."""
    if not (math.isfinite(volts) and MIN_VOLTS <= volts <= MAX_VOLTS):
        raise ValueError(f"{volts} V is outside the DS4432U trim range {MIN_VOLTS}..{MAX_VOLTS}")
    current = _VREF / _R_BOTTOM - (volts - _VREF) / _R_TOP
    magnitude = math.ceil(abs(current / _FULL_SCALE_A * _STEPS) - 1e-9)
    code = min(magnitude, _STEPS)
    return code | 0x80 if volts < NOMINAL_VOLTS else code


def volts_from_code(code: int) -> float:
    """The output an OUT0 ``code`` trims to (the inverse of :func:`trim_code`)."""
    steps = code & _STEPS
    current = steps / _STEPS * _FULL_SCALE_A * (1 if code & 0x80 else -1)
    return _VREF + _R_TOP * (_VREF / _R_BOTTOM - current)
