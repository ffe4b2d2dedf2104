"""Probing higher-priority pools while a lower one is in use (a mixin of PoolManager).

A probe connects, subscribes, authorizes and waits for a job, then hangs up; the
failover policy turns a long enough streak of good probes into a return to that pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from stratum_client.config import PoolPolicy
from stratum_client.errors import ProtocolError
from stratum_client.pool.connection import (
    PoolConnection,
    PoolConnectionError,
    open_pool_connection,
)
from stratum_client.pool.failover import FailoverPolicy
from stratum_client.pool.link import PoolSlot
from stratum_client.protocol import events as ev
from stratum_client.protocol.session import PoolSession

__all__ = ["PoolProbes"]

log = structlog.get_logger(__name__)

_PROBE_TICK = 1.0
_CLOSE_TIMEOUT = 2.0


class PoolProbes:
    """The probe loop and one probe's handshake."""

    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _policy: PoolPolicy
    _failover: FailoverPolicy
    _pools: list[PoolSlot]
    _probes: set[asyncio.Task[None]]
    _closing: bool
    _probe_timeout: float

    def _still_wanted(self, index: int, pool: PoolSlot, *, current: bool = True) -> bool:
        raise NotImplementedError

    def _leave_for(self, index: int, reason: str) -> None:
        raise NotImplementedError

    async def _probe_loop(self) -> None:
        while not self._closing:
            wait = self._failover.next_probe_in(self._clock())
            await self._sleep(_PROBE_TICK if wait is None else min(wait, _PROBE_TICK))
            for index in self._failover.probes_due(self._clock()):
                pool = self._pools[index]
                task = asyncio.create_task(
                    self._probe(index, pool), name=f"pool-probe-{pool.config.name}"
                )
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, index: int, pool: PoolSlot) -> None:
        """Probe one pool; move back to it when the policy says its streak is long enough."""
        try:
            ok, detail = await self._probe_pool(pool)
        except Exception as exc:  # a bug in a probe must not stop future probes
            log.exception("pool probe error", pool=pool.config.name)
            ok, detail = False, f"probe error: {exc!r}"
        if not self._still_wanted(index, pool, current=False):
            return  # the pool list was reloaded meanwhile
        pool.last_failed = not ok
        if ok:
            log.info("probe succeeded", pool=pool.config.name)
        else:
            pool.last_error = detail
            log.debug("probe failed", pool=pool.config.name, error=detail)
        target = self._failover.probe_finished(index, ok, self._clock())
        if target is not None:
            name = self._pools[target].config.name
            log.info("higher-priority pool healthy long enough; returning to it", pool=name)
            self._leave_for(target, f"returning to higher-priority pool {name}")

    async def _probe_pool(self, pool: PoolSlot) -> tuple[bool, str]:
        """Connect, subscribe, authorize and wait for a job, then hang up."""
        try:
            conn = await open_pool_connection(
                pool.config, connect_timeout=self._policy.connect_timeout
            )
        except PoolConnectionError as exc:
            return False, str(exc)
        try:
            async with asyncio.timeout(self._probe_timeout):
                return await self._probe_session(conn, PoolSession(pool.settings))
        except TimeoutError:
            return False, f"probe: no job within {self._probe_timeout:g} s"
        except (PoolConnectionError, ProtocolError) as exc:
            return False, f"probe: {exc}"
        finally:
            await conn.close(_CLOSE_TIMEOUT)

    async def _probe_session(self, conn: PoolConnection, session: PoolSession) -> tuple[bool, str]:
        authorized = has_job = False
        outputs = session.start(self._clock())
        while True:
            for output in outputs:
                if isinstance(output, ev.SendBytes):
                    conn.write(output.data)
                elif isinstance(output, ev.AuthorizationFailed | ev.SubscribeFailed):
                    return False, "probe: the pool refused the handshake"
                authorized = authorized or isinstance(output, ev.Authorized)
                has_job = has_job or isinstance(output, ev.NewJob)
            if authorized and has_job:
                return True, "ok"
            outputs = session.receive_data(await conn.read(), self._clock())
