"""Handing verified nonces from a driver's receive task to whoever consumes them.

Either straight into a sink (the chain runner's feed: no loop step per nonce) or into a
bounded queue read by :meth:`NonceDelivery.next`, which resolves one bare future per
wait so a nonce reaches the caller in a single loop step (a queue getter task plus
``asyncio.wait`` took three). Owned by :class:`~stratum_client.asic.base.AsicDriver`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from stratum_client.asic.records import FoundNonce
from stratum_client.errors import DriverError

__all__ = ["NonceDelivery"]


class NonceDelivery:
    """A sink or a bounded queue (oldest dropped) with one waiting reader."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sink: Callable[[FoundNonce], None] | None = None
        self.dropped = 0
        """Nonces discarded because nobody collected them in time."""
        self._nonces: deque[FoundNonce] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def clear(self) -> None:
        """Forget queued nonces and the drop count (a new run); the sink stays."""
        self._nonces.clear()
        self.dropped = 0

    def put(self, found: FoundNonce) -> None:
        """Deliver ``found``; an exception from the sink propagates to the caller."""
        if self.sink is not None:
            self.sink(found)
            return
        nonces = self._nonces
        if len(nonces) >= self.size:
            nonces.popleft()
            self.dropped += 1
        nonces.append(found)
        self.wake()

    def wake(self, _task: object = None) -> None:
        """Resume :meth:`next` (a nonce arrived, or the receive task ended)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self, task: asyncio.Task[None] | None, port: str) -> FoundNonce:
        """The next queued nonce; DriverError once ``task`` (the receive task) has ended."""
        if self._nonces:
            return self._nonces.popleft()
        if task is None or task.done():
            raise DriverError(f"{port}: driver is not running")
        while not self._nonces:
            if task.done():
                cause = None if task.cancelled() else task.exception()
                raise DriverError(f"{port}: driver stopped") from cause
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._nonces.popleft()
