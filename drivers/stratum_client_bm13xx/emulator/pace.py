"""Silicon's pace for an emulated chain: each job lasts only as long as real chips take.

A CPU hashes about a million times slower than a chip, so emulated chips never run out
of nonces on their own, and a job interval that idles real silicon looks fine in the
emulator. With silicon time on, the server ends each job once the chips it models would
have exhausted it (:meth:`~.chain.EmulatedChain.search_seconds`) and the chain idles
until the next job arrives. The share of wall time the emulator hashes is then the share
a real chain would: a BM1370 without version rolling is through a job in 4 ms, and with
a 500 ms interval hashes 0.8 % of the time.

Sans-IO: the caller passes ``now``.
"""

from __future__ import annotations

from .chain import EmulatedChain

__all__ = ["SiliconPace"]


class SiliconPace:
    """Tracks when the newest job arrived and whether silicon would still be on it."""

    def __init__(self) -> None:
        self._seen = -1
        self._started = 0.0
        self.jobs_exhausted = 0
        """Jobs that ran out before the next one arrived (the chain then idled)."""
        self._counted = -1

    def note_input(self, chain: EmulatedChain, now: float) -> None:
        """Call after the chain took host bytes: a new job restarts the clock."""
        if chain.jobs_received != self._seen:
            self._seen, self._started = chain.jobs_received, now

    def busy(self, chain: EmulatedChain, now: float) -> bool:
        """Whether the chips would still be searching the newest job at ``now``."""
        seconds = chain.search_seconds()
        if seconds is None or now - self._started < seconds:
            return True
        if self._counted != self._seen:
            self._counted = self._seen
            self.jobs_exhausted += 1
        return False

    def remaining(self, chain: EmulatedChain, now: float) -> float:
        """Seconds of silicon work left on the newest job (0 when exhausted)."""
        seconds = chain.search_seconds()
        return 0.0 if seconds is None else max(seconds - (now - self._started), 0.0)
