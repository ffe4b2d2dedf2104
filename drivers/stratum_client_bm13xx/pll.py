"""PLL divider search and frequency ramps for the BM13xx hash clock.

The hash clock is ``f = 25 MHz · fb / (refdiv · p1 · p2)``, programmed into register 0x08
as ``vdo fb refdiv post``. The search walks refdiv 2→1 and p1, p2 7→1 with **p1 > p2**,
takes ``fb = round(f/25 · refdiv·p1·p2)`` when it lies in the model's range, and keeps the
candidate with the closest frequency, then the lowest VCO (``25·fb/refdiv``), then the
smallest ``p1·p2``; on a full tie the first one found wins.

All four reference points agree with that rule: BM1370 525 MHz → ``40 A8 02 30``,
BM1366 485 → ``50 C2 02 40``, BM1397 425 → ``40 44 02 21`` and 450 MHz in range 60–200
→ fb 72, refdiv 2, p1 2, p2 1. One known conflict: sniffed BM1397 traffic from another
firmware writes ``40 A0 02 25`` (p1 2 < p2 5) for 200 MHz, which this search never
produces (it picks ``40 40 02 41``, the same 200 MHz at a lower VCO); chips accept both.

Comparisons are done in exact rational arithmetic instead of the reference firmware's
float-with-epsilon; the two differ only for targets almost exactly between two
achievable frequencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .chips import ChipModel

__all__ = ["RAMP_STEP_MHZ", "PllSetting", "pll_for_frequency", "ramp_plan"]

REF_CLOCK_MHZ = 25
VCO_HIGH_MHZ = 2400
"""At or above this VCO frequency BM1366/68/70 need VDO scale 0x50."""
RAMP_STEP_MHZ = 6.25
"""Frequency changes are made in steps this small so the core supply can follow."""


@dataclass(frozen=True, slots=True)
class PllSetting:
    """One PLL configuration and the register bytes that select it."""

    fb: int
    refdiv: int
    p1: int
    p2: int
    actual_mhz: float
    vco_mhz: float
    register: bytes
    """``vdo fb refdiv post``, the four value bytes of register 0x08."""


def pll_for_frequency(model: ChipModel, mhz: float) -> PllSetting:
    """The PLL setting of ``model`` closest to ``mhz``; ValueError if none is reachable."""
    if not math.isfinite(mhz) or mhz <= 0:
        raise ValueError(f"frequency must be a positive number of MHz, got {mhz}")
    target = Fraction(mhz)
    best: tuple[tuple[Fraction, Fraction, int], int, int, int, int] | None = None
    for refdiv, p1, p2 in _divider_order():
        divider = refdiv * p1 * p2
        fb = math.floor(target * divider / REF_CLOCK_MHZ + Fraction(1, 2))
        if not model.fb_min <= fb <= model.fb_max:
            continue
        key = (
            abs(target - Fraction(REF_CLOCK_MHZ * fb, divider)),
            Fraction(REF_CLOCK_MHZ * fb, refdiv),
            p1 * p2,
        )
        if best is None or key < best[0]:
            best = (key, fb, refdiv, p1, p2)
    if best is None:
        raise ValueError(f"{model.name}: no PLL setting reaches {mhz} MHz")
    _, fb, refdiv, p1, p2 = best
    return _setting(model, fb, refdiv, p1, p2)


def _divider_order() -> list[tuple[int, int, int]]:
    """(refdiv, p1, p2) in search order: refdiv 2→1, p1 7→1, p2 7→1, p1 > p2."""
    return [
        (refdiv, p1, p2)
        for refdiv in (2, 1)
        for p1 in range(7, 0, -1)
        for p2 in range(7, 0, -1)
        if p1 > p2
    ]


def _setting(model: ChipModel, fb: int, refdiv: int, p1: int, p2: int) -> PllSetting:
    vco = REF_CLOCK_MHZ * fb / refdiv
    post = ((p1 - 1) << 4 | (p2 - 1)) if model.pll_post_minus_one else (p1 << 4 | p2)
    vdo = 0x50 if model.pll_vdo_switch and vco >= VCO_HIGH_MHZ else 0x40
    return PllSetting(
        fb=fb,
        refdiv=refdiv,
        p1=p1,
        p2=p2,
        actual_mhz=REF_CLOCK_MHZ * fb / (refdiv * p1 * p2),
        vco_mhz=vco,
        register=bytes((vdo, fb, refdiv, post)),
    )


def ramp_plan(start_mhz: float, target_mhz: float, step_mhz: float = RAMP_STEP_MHZ) -> list[float]:
    """Frequencies to program, in order, to move from ``start_mhz`` to ``target_mhz``.

    An off-grid start first snaps to the next multiple of ``step_mhz`` towards the target;
    then each entry is one step further, and the last is always exactly the target (also
    when start and target are equal, so a ramp always programs the final value).
    """
    start, target, step = Fraction(start_mhz), Fraction(target_mhz), Fraction(step_mhz)
    if step <= 0:
        raise ValueError("ramp step must be positive")
    if start == target:
        return [float(target)]
    up = target > start
    snapped = (math.ceil(start / step) if up else math.floor(start / step)) * step
    plan: list[Fraction] = []
    current = start
    if snapped != start and (snapped < target if up else snapped > target):
        plan.append(snapped)
        current = snapped
    while current != target:
        current = min(current + step, target) if up else max(current - step, target)
        plan.append(current)
    return [float(f) for f in plan]
