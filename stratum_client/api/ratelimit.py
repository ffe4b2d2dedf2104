"""Per-client token buckets: what one API client may cost the daemon.

A LAN scanner or a runaway script must not turn an API into a CPU sink next to the
mining loop. Time is passed in, so the limiter is testable without sleeping.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """Per-client token buckets, bounded in clients; shared by the cgminer and REST shells.

    A LAN scanner or a runaway script must not turn the API into a CPU sink next to
    the mining loop. Time is passed in, so the limiter is testable without sleeping.
    """

    def __init__(self, rate: float = 10.0, burst: float = 20.0, max_clients: int = 1024) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        """Take one token for ``client`` if it has one."""
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed
