"""Found shares between the chips and the pool's verdict: waiting, or in flight.

A share waits (bounded, oldest dropped first) while no session can take it, and is in
flight from ``PoolManager.submit`` until its outcome. The same share may be in flight
more than once (a re-emitted nonce the pool must judge twice), so in-flight shares are
counted, not just held.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator

from stratum_client.pool.types import Share

__all__ = ["LOST_QUEUE_FULL", "ShareQueue"]

LOST_QUEUE_FULL = "pending queue full"


class ShareQueue:
    """Pending and in-flight shares; every share dropped goes to ``lose`` with a reason."""

    def __init__(self, limit: int, lose: Callable[[Share, str], None]) -> None:
        self._limit = limit
        self._lose = lose
        self._pending: OrderedDict[int, Share] = OrderedDict()
        self._serial = 0
        self._in_flight: dict[Share, int] = {}
        self.in_flight_count = 0

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def pending(self) -> Iterator[Share]:
        return iter(self._pending.values())

    def in_flight_for(self, pool: int) -> int:
        return sum(n for share, n in self._in_flight.items() if share.pool == pool)

    def send(self, share: Share) -> None:
        self._in_flight[share] = self._in_flight.get(share, 0) + 1
        self.in_flight_count += 1

    def take_in_flight(self, share: Share) -> bool:
        count = self._in_flight.get(share, 0)
        if not count:
            return False
        if count == 1:
            del self._in_flight[share]
        else:
            self._in_flight[share] = count - 1
        self.in_flight_count -= 1
        return True

    def take_pending(self, share: Share) -> bool:
        for serial, queued in self._pending.items():
            if queued == share:
                del self._pending[serial]
                return True
        return False

    def enqueue(self, share: Share) -> None:
        self._serial += 1
        self._pending[self._serial] = share
        while len(self._pending) > self._limit:
            _, oldest = self._pending.popitem(last=False)
            self._lose(oldest, LOST_QUEUE_FULL)

    def sweep(self, fate: Callable[[Share], str | None]) -> Counter[str]:
        """Drop every waiting share ``fate`` gives a reason for; the reasons counted."""
        lost: Counter[str] = Counter()
        if not self._pending:
            return lost
        for serial, share in list(self._pending.items()):
            reason = fate(share)
            if reason is not None:
                del self._pending[serial]
                self._lose(share, reason)
                lost[reason] += 1
        return lost

    def send_all(self) -> list[Share]:
        """Every waiting share, now in flight."""
        shares = list(self._pending.values())
        self._pending.clear()
        for share in shares:
            self.send(share)
        return shares
