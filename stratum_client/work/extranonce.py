"""Extranonce2: the per-work-unit bytes a miner writes into the coinbase.

A counter is written little-endian into the size the pool granted. Only the low eight
bytes carry the counter (a 64-bit space is never exhausted in practice); larger sizes are
zero-padded. Running out of values raises instead of wrapping, because a repeated
extranonce2 recreates identical work and every share from it is a duplicate.
"""

from __future__ import annotations

from stratum_client.errors import WorkError

__all__ = [
    "MAX_EXTRANONCE2_SIZE",
    "Extranonce2Counter",
    "encode_extranonce2",
    "extranonce2_space",
]

MAX_EXTRANONCE2_SIZE = 32
_COUNTER_BYTES = 8


def extranonce2_space(size: int) -> int:
    """How many distinct extranonce2 values a ``size``-byte field gives (1 for size 0)."""
    if not 0 <= size <= MAX_EXTRANONCE2_SIZE:
        raise WorkError(f"extranonce2 size {size} is outside 0..{MAX_EXTRANONCE2_SIZE}")
    return 1 << (8 * min(size, _COUNTER_BYTES))


def encode_extranonce2(counter: int, size: int) -> bytes:
    """``counter`` little-endian in ``size`` bytes; size 0 gives the single value ``b""``."""
    space = extranonce2_space(size)
    if not 0 <= counter < space:
        raise WorkError(f"extranonce2 counter {counter} does not fit in {size} byte(s)")
    used = min(size, _COUNTER_BYTES)
    return counter.to_bytes(used, "little") + bytes(size - used)


class Extranonce2Counter:
    """Hands out each extranonce2 of one job exactly once."""

    __slots__ = ("_next", "_space", "size")

    def __init__(self, size: int, start: int = 0) -> None:
        self.size = size
        self._space = extranonce2_space(size)
        if not 0 <= start <= self._space:
            raise WorkError(f"extranonce2 start {start} is outside 0..{self._space}")
        self._next = start

    @property
    def remaining(self) -> int:
        """Values not handed out yet."""
        return self._space - self._next

    def take(self) -> bytes:
        """The next unused extranonce2; raises WorkError once the space is used up."""
        if self._next >= self._space:
            raise WorkError(
                f"all {self._space} extranonce2 values of size {self.size} are used; "
                "a new job is needed"
            )
        value = encode_extranonce2(self._next, self.size)
        self._next += 1
        return value
