"""Found shares between the chips and the pool's verdict: waiting, or in flight.

A share waits (bounded, oldest dropped first) while no session can take it, and is in
flight from ``PoolManager.submit`` until its outcome. The same share may be in flight
more than once (a re-emitted nonce the pool must judge twice), so in-flight shares are
counted, not just held. Every found share ends in the counters as accepted, rejected or
lost with a reason, each counted in every ledger ``ledgers`` gives for it.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator

import structlog

from stratum_client.daemon.stats import ShareStats
from stratum_client.pool.types import Share, ShareOutcome
from stratum_client.protocol.messages import SubmitErrorCode

__all__ = ["LOST_QUEUE_FULL", "ShareQueue"]

LOST_QUEUE_FULL = "pending queue full"

_log = structlog.get_logger("stratum_client.daemon.dispatcher")


class ShareQueue:
    """Pending and in-flight shares, and the counters of how each one ended."""

    def __init__(self, limit: int, ledgers: Callable[[Share], list[ShareStats]]) -> None:
        self._limit = limit
        self._ledgers = ledgers
        self.untracked = 0
        """Outcomes for shares not in flight here (a pool-manager bug)."""
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
            self.lose(oldest, LOST_QUEUE_FULL)

    def sweep(self, fate: Callable[[Share], str | None]) -> Counter[str]:
        """Drop every waiting share ``fate`` gives a reason for; the reasons counted."""
        lost: Counter[str] = Counter()
        if not self._pending:
            return lost
        for serial, share in list(self._pending.items()):
            reason = fate(share)
            if reason is not None:
                del self._pending[serial]
                self.lose(share, reason)
                lost[reason] += 1
        return lost

    def send_all(self) -> list[Share]:
        """Every waiting share, now in flight."""
        shares = list(self._pending.values())
        self._pending.clear()
        for share in shares:
            self.send(share)
        return shares

    def found(self, share: Share, *, send: bool) -> None:
        """Count a found share, then put it in flight (``send``) or make it wait."""
        for stats in self._ledgers(share):
            stats.record_found(share.difficulty, block=share.block)
        if send:
            self.send(share)
        else:
            self.enqueue(share)

    def held_back(self, share: Share, reason: str) -> None:
        """Count a found share that is deliberately not sent, with the reason."""
        for stats in self._ledgers(share):
            stats.record_found(share.difficulty, block=share.block)
            stats.record_lost(reason)

    def lose(self, share: Share, reason: str) -> None:
        for stats in self._ledgers(share):
            stats.record_lost(reason)

    def requeue(self, share: Share, fate: Callable[[Share], str | None]) -> None:
        """A share that did not reach the pool waits again, unless ``fate`` says why it
        never can be accepted now."""
        if not self.take_in_flight(share):
            self.untracked += 1
            _log.warning("no share in flight to requeue", job_id=share.job.job_id)
            return
        reason = fate(share)
        if reason is not None:
            self.lose(share, reason)
        else:
            self.enqueue(share)

    def outcome(self, outcome: ShareOutcome, now: float) -> None:
        share = outcome.share
        if not self.take_in_flight(share) and not self.take_pending(share):
            self.untracked += 1
            _log.warning("outcome for an unknown share", job_id=share.job.job_id)
            return
        if outcome.accepted:
            for stats in self._ledgers(share):
                stats.record_accepted(share.difficulty, now)
            return
        kind = SubmitErrorCode.classify(outcome.code, outcome.reason)
        reason = kind.name.lower().replace("_", " ")
        stale = kind is SubmitErrorCode.JOB_NOT_FOUND
        _log.info("share rejected", reason=outcome.reason, code=outcome.code, kind=reason)
        for stats in self._ledgers(share):
            stats.record_rejected(share.difficulty, reason, stale=stale)
