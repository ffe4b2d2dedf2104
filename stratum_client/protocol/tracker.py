"""Outstanding requests of one connection: ids, deadlines, late replies, bounded memory.

Ids are consecutive ints from 1, as every Stratum client numbers them per connection.
A request past its deadline is reported once and then remembered for a while, so a late
reply (a share accepted after 40 s) is still recognised instead of looking like garbage.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Pending", "RequestTracker"]

_MAX_LATE = 256


@dataclass(slots=True)
class Pending:
    """One request awaiting its reply."""

    method: str
    request_id: int
    sent_at: float
    deadline: float | None
    """None: no timeout (mining.configure, whose silence is judged by later replies)."""
    quiet: bool = False
    """Expire without a report: optional requests many pools never answer, superseded ones."""
    job_id: str = ""
    expired: bool = False
    """Its timeout was already reported; a reply now is a late one."""


def _as_request_id(value: object) -> int | None:
    """Our ids are ints; some pools echo them back as strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


class RequestTracker:
    """Matches replies to requests; never holds more than ``max_outstanding`` of them."""

    def __init__(self, max_outstanding: int) -> None:
        self._max = max_outstanding
        self._next_id = 1
        self._pending: OrderedDict[int, Pending] = OrderedDict()
        self._late: OrderedDict[int, Pending] = OrderedDict()
        self._evicted: list[Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    def open(
        self,
        method: str,
        now: float,
        timeout: float | None,
        *,
        quiet: bool = False,
        job_id: str = "",
    ) -> Pending:
        """Allocate the next id; when full, the oldest timed request is evicted (reported by
        the next :meth:`expire`, as if it had timed out)."""
        deadline = None if timeout is None else now + timeout
        pending = Pending(method, self._next_id, now, deadline, quiet, job_id)
        self._next_id += 1
        self._pending[pending.request_id] = pending
        if len(self._pending) > self._max:
            oldest = next((p for p in self._pending.values() if p.deadline is not None), None)
            if oldest is not None:
                del self._pending[oldest.request_id]
                self._evicted.append(oldest)
        return pending

    def silence(self, request_id: int | None) -> None:
        """A newer request replaced this one: its reply or timeout is no longer news."""
        if request_id is not None and (pending := self._pending.get(request_id)) is not None:
            pending.quiet = True

    def take(self, reply_id: object) -> Pending | None:
        """The request a reply answers (``expired`` set if it comes late); None for an id
        we never sent or have long forgotten."""
        request_id = _as_request_id(reply_id)
        if request_id is None:
            return None
        pending = self._pending.pop(request_id, None)
        return pending if pending is not None else self._late.pop(request_id, None)

    def expire(self, now: float) -> list[Pending]:
        """Remove requests past their deadline; return those worth reporting."""
        due = [p for p in self._pending.values() if p.deadline is not None and now >= p.deadline]
        expired, self._evicted = [*self._evicted, *due], []
        for pending in due:
            del self._pending[pending.request_id]
        for pending in expired:
            pending.expired = True
            self._late[pending.request_id] = pending
        while len(self._late) > _MAX_LATE:
            self._late.popitem(last=False)
        return [p for p in expired if not p.quiet]
