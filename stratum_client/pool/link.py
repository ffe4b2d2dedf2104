"""What the pool manager keeps per configured pool and per connection.

A :class:`PoolSlot` outlives connections (settings, the pool's job table, the resume id,
counters); a :class:`Link` is one connection and its session, from connect to teardown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from stratum_client.config import PoolConfig, PoolPolicy
from stratum_client.pool.connection import PoolConnection
from stratum_client.pool.failover import Ending
from stratum_client.pool.types import PoolStatus, Share
from stratum_client.protocol import events as ev
from stratum_client.protocol.jobs import JobTable
from stratum_client.protocol.session import PoolSession
from stratum_client.protocol.settings import SessionSettings

__all__ = ["VERSION_ROLLING_MASK", "Link", "PoolSlot", "new_slot", "pool_state", "pool_status"]

log = structlog.get_logger(__name__)

VERSION_ROLLING_MASK = 0x1FFFE000
"""BIP320 general-purpose bits, asked for when a pool has ``version_rolling`` on."""


@dataclass(slots=True, eq=False)
class PoolSlot:
    """One configured pool's slot in the manager: settings plus what outlives a connection."""

    config: PoolConfig
    settings: SessionSettings
    jobs: JobTable
    """The pool's jobs; each session changes it, and it outlives the connection so a
    resumed session can keep the jobs of the block it left."""
    resume_id: str | None = None
    redirect: tuple[str, int] | None = None
    """Endpoint a honoured ``client.reconnect`` pointed at, until it fails."""
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    connects: int = 0
    failures: int = 0
    last_error: str = ""
    last_failed: bool = False

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.redirect or (self.config.host, self.config.port)


class Link:
    """One connection and its session, from connect to teardown."""

    def __init__(
        self, index: int, pool: PoolSlot, conn: PoolConnection, session: PoolSession
    ) -> None:
        self.index = index
        self.pool = pool
        self.conn = conn
        self.session = session
        self.log = log.bind(pool=pool.config.name)
        self.in_flight: dict[int, Share] = {}
        self.subscribed: ev.Subscribed | None = None
        self.authorized = False
        self.up = False
        self.up_at = 0.0
        self.down = False
        """The dispatcher was told this session is over (PoolDown): forward nothing more."""
        self.heard = False
        """The dispatcher got an event from this session (a job may come before authorize)."""
        self.ending: Ending | None = None
        self.reason = ""
        self.wait = 0.0
        self.graceful = False
        self.ended = asyncio.Event()

    @property
    def accepting(self) -> bool:
        return self.up and not self.down and self.ending is None

    def finish(
        self, ending: Ending, reason: str, *, wait: float = 0.0, graceful: bool = False
    ) -> None:
        """End the session (first call wins); ``graceful`` waits for in-flight replies."""
        if self.ending is not None:
            return
        self.ending, self.reason, self.wait, self.graceful = ending, reason, wait, graceful
        self.ended.set()


def new_slot(config: PoolConfig, policy: PoolPolicy, user_agent: str) -> PoolSlot:
    """A fresh slot: the session settings this pool's config and the policy give."""
    settings = SessionSettings(
        user=config.user,
        password=config.password.reveal(),
        user_agent=user_agent,
        version_mask=VERSION_ROLLING_MASK if config.version_rolling else 0,
        version_bits_form=config.version_bits_form,
        suggest_difficulty=config.suggest_difficulty,
        extranonce_subscribe=config.extranonce_subscribe,
        submit_timeout=policy.submit_timeout,
        setup_timeout=policy.connect_timeout,
        idle_timeout=policy.silence_timeout,
    )
    return PoolSlot(config, settings, JobTable(settings.max_jobs))


def pool_status(index: int, pool: PoolSlot, link: Link | None, state: str) -> PoolStatus:
    """What the APIs show; ``link`` is the pool's connection, if it has one."""
    live = link if link is not None and link.accepting else None
    return PoolStatus(
        index=index,
        name=pool.config.name,
        url=pool.config.url,
        user=pool.config.user,
        state=state,
        priority=index,
        difficulty=live.session.difficulty if live is not None else None,
        accepted=pool.accepted,
        rejected=pool.rejected,
        stale=pool.stale,
        connects=pool.connects,
        failures=pool.failures,
        last_error=pool.last_error,
        version_mask=live.session.version_mask if live is not None else 0,
    )


def pool_state(pool: PoolSlot, link: Link | None, *, enabled: bool, connecting: bool) -> str:
    """``disabled``, ``active``, ``connecting``, ``failed`` or ``standby``."""
    if not enabled:
        return "disabled"
    if link is not None and link.accepting:
        return "active"
    if (link is not None and link.ending is None) or connecting:
        return "connecting"
    return "failed" if pool.last_failed else "standby"
