"""Fault injection for the emulated chain: what a flaky board does to the reply stream.

:class:`Faults` holds the knobs (all off by default) and counts what was injected, so a
test can tell "the driver coped with N corrupted bytes" from "nothing was injected".
:class:`FaultInjector` applies them with a caller-supplied random generator, which makes
a seeded chain reproduce the same faults on every run.

By default the faults hit nonce replies only: line noise would also hit register
replies, but a chain whose chip-id replies get lost cannot even be enumerated, which
makes a nonce-path chaos test fail for an unrelated reason. ``register_replies=True``
extends corruption and drops to every reply.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["FaultInjector", "Faults"]


@dataclass
class Faults:
    """Fault knobs for one chain, plus counters of every fault actually injected."""

    corrupt_rate: float = 0.0
    """Fraction of outgoing reply bytes XOR-ed with a random non-zero value."""
    drop_rate: float = 0.0
    """Fraction of outgoing replies never sent."""
    dead_chips: frozenset[int] = frozenset()
    """Chain positions whose cores never find a nonce (they still answer commands)."""
    duplicate_nonces: int = 0
    """Extra copies sent of every nonce reply, like the BM1370's re-emitted nonces."""
    register_replies: bool = False
    """Also corrupt and drop register replies (chip ids, register reads)."""

    nonces_sent: int = field(default=0, init=False)
    """Nonce replies generated (each found nonce once, before drops and duplicates)."""
    duplicates_sent: int = field(default=0, init=False)
    corrupted_bytes: int = field(default=0, init=False)
    dropped_replies: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        for name in ("corrupt_rate", "drop_rate"):
            rate = getattr(self, name)
            if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
                raise ValueError(f"{name} must be a fraction between 0 and 1, got {rate!r}")
        if int(self.duplicate_nonces) < 0:
            raise ValueError(f"duplicate_nonces must be ≥ 0, got {self.duplicate_nonces}")
        self.duplicate_nonces = int(self.duplicate_nonces)
        self.dead_chips = _chip_set(self.dead_chips)

    @property
    def injected(self) -> dict[str, int]:
        """The counters, for summaries."""
        return {
            "nonces_sent": self.nonces_sent,
            "duplicates_sent": self.duplicates_sent,
            "corrupted_bytes": self.corrupted_bytes,
            "dropped_replies": self.dropped_replies,
        }


def _chip_set(chips: Iterable[int]) -> frozenset[int]:
    result = frozenset(int(c) for c in chips)
    if any(c < 0 for c in result):
        raise ValueError(f"dead chip positions must be ≥ 0, got {sorted(result)}")
    return result


class FaultInjector:
    """Applies :class:`Faults` to outgoing replies and updates its counters.

    Corruption draws the gap to the next corrupted byte from a geometric distribution, so
    its cost grows with the faults injected, not with the bytes sent.
    """

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults = faults
        self._rng = rng
        self._gap: int | None = None
        self._gap_rate = 0.0

    def nonce_reply(self, frame: bytes) -> bytes:
        """What leaves the chain for one found nonce (duplicates, drops, corruption)."""
        faults = self.faults
        faults.nonces_sent += 1
        copies = 1 + faults.duplicate_nonces
        faults.duplicates_sent += faults.duplicate_nonces
        return b"".join(self._damage(frame) for _ in range(copies))

    def register_reply(self, frame: bytes) -> bytes:
        """What leaves the chain for one register reply."""
        return self._damage(frame) if self.faults.register_replies else frame

    def _damage(self, frame: bytes) -> bytes:
        faults = self.faults
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            faults.dropped_replies += 1
            return b""
        if not faults.corrupt_rate:
            return frame
        return self._corrupt(frame)

    def _corrupt(self, frame: bytes) -> bytes:
        buf = bytearray(frame)
        index = self._next_gap()
        while index < len(buf):
            buf[index] ^= self._rng.randrange(1, 256)
            self.faults.corrupted_bytes += 1
            index += 1 + self._draw_gap()
        self._gap = index - len(buf)
        return bytes(buf)

    def _next_gap(self) -> int:
        if self._gap is None or self._gap_rate != self.faults.corrupt_rate:
            self._gap_rate = self.faults.corrupt_rate
            self._gap = self._draw_gap()
        return self._gap

    def _draw_gap(self) -> int:
        """Clean bytes before the next corrupted one, for the current rate."""
        rate = self.faults.corrupt_rate
        if rate >= 1.0:
            return 0
        return int(math.log(1.0 - self._rng.random()) / math.log(1.0 - rate))
