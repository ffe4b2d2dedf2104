"""public-pool's vardiff step, as a pure function of the shares a window saw."""

from __future__ import annotations

import math
from typing import Final

from stratum_client.testing.judge import Miner

__all__ = ["PUBLIC_POOL_VARDIFF_INTERVAL", "close_window", "vardiff_step"]

PUBLIC_POOL_VARDIFF_INTERVAL: Final = 60.0
"""Seconds between public-pool's difficulty checks; pass it as ``vardiff_interval``."""
_VARDIFF_MIN = 0.00001
"""public-pool's lowest vardiff difficulty."""
_VARDIFF_MIN_SHARES = 5
"""Fewer accepted shares in a step and public-pool divides the difficulty by 6."""


def vardiff_step(
    current: float, shares: int, difficulty_sum: float, seconds: float, share_interval: float
) -> float | None:
    """The difficulty a public-pool-style vardiff step moves to, or None to stay.

    ``shares`` accepted shares summing ``difficulty_sum`` arrived in ``seconds``. Fewer
    than five: the difficulty drops to a sixth. Otherwise it moves so that a share comes
    every ``share_interval`` seconds (public-pool aims at ten), but only when that is more
    than a factor of two away. Results are rounded down to a power of two and never go
    below public-pool's floor of 0.00001.
    """
    if shares < _VARDIFF_MIN_SHARES:
        wanted = current / 6
    else:
        wanted = difficulty_sum / seconds * share_interval
        if current / 2 <= wanted <= current * 2:
            return None
    new = max(_VARDIFF_MIN, 2.0 ** math.floor(math.log2(wanted)))
    return None if new == current else new


def close_window(miner: Miner, now: float, share_interval: float) -> float | None:
    """End ``miner``'s vardiff window at ``now`` (a new one opens); the step's result."""
    shares, total = miner.window_shares, miner.window_difficulty
    seconds = max(now - miner.window_start, 1e-3)
    miner.window_shares, miner.window_difficulty, miner.window_start = 0, 0.0, now
    return vardiff_step(miner.difficulty, shares, total, seconds, share_interval)
