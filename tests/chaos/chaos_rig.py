"""The chaos rig: the real Daemon, emulated chips on ptys, real pools on 127.0.0.1.

A scenario starts a :class:`Rig`, breaks something, and then asks the rig the four
questions every chaos scenario must answer, each against independent truth:

1. **Is the daemon still up?** Its ``run()`` task has not finished.
2. **Does mining resume, and how fast?** The honest pool's own list of accepted shares
   grows again (:meth:`Rig.wait_mining` returns the seconds that took).
3. **Was any invalid share sent?** The honest pool rebuilt and hashed every submit; its
   rejects may only carry reasons that are the pool's doing (:func:`invalid_rejects`).
4. **Is every nonce accounted for?** :meth:`Rig.quiesce` kills every emulated core, waits
   for the pipeline to drain, then :meth:`Rig.ledger` follows each chain's nonces from
   what the emulator put on the wire, through the driver's counters, the runner and the
   dispatcher's classes, to the share ledger (which must balance).

The same rig drives ``bench/soak.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratum_client.asic.base import AsicDriver
from stratum_client.config import Config, parse_config
from stratum_client.daemon.app import Daemon, DaemonSnapshot, Service, status_line
from stratum_client.testing.pool import LocalPool, SubmitRecord
from stratum_client_bm13xx.driver import Bm13xxDriver
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.faults import Faults
from stratum_client_bm13xx.emulator.server import EmulatorServer, serve_chains

__all__ = [
    "ALLOWED_REJECTS",
    "POOL_DIFFICULTY",
    "SCALE",
    "ChainLedger",
    "ChainPlan",
    "PoolEntry",
    "Rig",
    "accepted_twice",
    "error_events",
    "invalid_rejects",
    "log_events",
    "run_rig",
]

SCALE = 2.0**-24
"""Emulated chips report nonces at ticket 256 × SCALE = 2**-16: a dozen a second."""
POOL_DIFFICULTY = 2.0**-14
"""A quarter of the nonces are shares: a few accepted shares a second on one core."""
ALLOWED_REJECTS = frozenset({"Job not found", "job not found", "rejecting everything (test)"})
"""Reject reasons that are the pool's doing; any other reject is an invalid share sent.
(The scenarios run LocalPool in strict mode, which words a stale share as public-pool
does; the soak's lenient pool words it in lower case.)"""
POLICY = """
[pool_policy]
connect_timeout = 2
silence_timeout = 3
backoff_initial = 0.1
backoff_max = 0.5
submit_timeout = 4
drain_timeout = 2
return_to_primary_after = 2
primary_probe_interval = 1
"""
"""Short timeouts so a scenario recovers in seconds (the defaults are minutes)."""
_POLL = 0.05


@dataclass
class ChainPlan:
    """One emulated chain and the ``[[devices]]`` entry that drives it."""

    name: str = "a"
    model: str = "bm1366"
    chips: int = 2
    faults: Faults = field(default_factory=Faults)
    seed: int = 7
    chain_type: type[EmulatedChain] = EmulatedChain
    record_limit: int = 10_000
    """Reported nonces the emulator remembers (bounded so a soak's memory stays flat)."""
    scale: float = SCALE
    """The chips' difficulty scale; smaller means more nonces for the same hashing."""

    def build(self) -> EmulatedChain:
        return self.chain_type(
            self.model,
            self.chips,
            difficulty_scale=self.scale,
            faults=self.faults,
            seed=self.seed,
            record_limit=self.record_limit,
        )


@dataclass(frozen=True)
class PoolEntry:
    """One ``[[pools]]`` entry."""

    url: str
    name: str
    password: str = "x"
    extra: str = ""
    """More TOML keys for this table (``ca_file = "..."``)."""


def config_toml(
    pools: Sequence[PoolEntry], chains: Sequence[tuple[ChainPlan, str]], extra: str = ""
) -> str:
    parts = [POLICY, extra]
    for pool in pools:
        parts.append(
            f'[[pools]]\nname = "{pool.name}"\nurl = "{pool.url}"\nuser = "chaos.rig"\n'
            f'password = "{pool.password}"\n{pool.extra}\n'
        )
    for plan, link in chains:
        parts.append(
            f'[[devices]]\nname = "{plan.name}"\ndriver = "{plan.model}"\nport = "{link}"\n'
            f"chips = {plan.chips}\ndifficulty_scale = {plan.scale}\n"
            "options = { ramp_step_delay = 0 }\n"
        )
    return "\n".join(parts)


def accepted_twice(pool: LocalPool) -> list[tuple[str, ...]]:
    """Shares the pool credited more than once (same session, job and header fields)."""
    keys = Counter(
        (r.extranonce1, r.job_id, r.extranonce2, r.ntime, r.nonce, r.version_bits or "")
        for r in pool.accepted
    )
    return [key for key, count in keys.items() if count > 1]


def invalid_rejects(pools: Iterable[LocalPool]) -> list[SubmitRecord]:
    """Submits an honest pool refused for a reason that is the miner's fault."""
    return [r for pool in pools for r in pool.rejected if r.reason not in ALLOWED_REJECTS]


@dataclass(frozen=True)
class ChainLedger:
    """One chain's nonces followed from the wire to the share ledger."""

    name: str
    emitted: int
    """Reply frames the emulator wrote (found nonces + duplicate copies − dropped)."""
    seen: int
    """Reply frames the driver parsed and classified (passed + duplicate + HW)."""
    corrupted_bytes: int
    crc_errors: int
    passed: int
    """Nonces the driver verified and handed on (``stale`` among them)."""
    duplicates: int
    stale: int
    hw_errors: int
    dropped: int
    """Verified nonces the driver's queue overflowed (must be 0)."""
    runner_nonces: int
    dispatcher_nonces: int
    drivers: int
    """Driver instances the runner went through (1 unless the chain was restarted)."""

    @property
    def lost_on_line(self) -> int:
        """Frames that left the emulator but never reached the driver's classifier."""
        return self.emitted - self.seen

    def problems(self, *, lossy_line: bool) -> list[str]:
        """Every way this chain's nonce ledger fails to add up (empty: it adds up)."""
        found: list[str] = []
        if self.lost_on_line < 0:
            found.append(f"driver saw {-self.lost_on_line} more frames than were sent")
        elif self.lost_on_line > self.corrupted_bytes and not lossy_line:
            found.append(
                f"{self.lost_on_line} frames vanished but only "
                f"{self.corrupted_bytes} bytes were corrupted"
            )
        if self.dropped:
            found.append(f"{self.dropped} verified nonces dropped by the driver queue")
        if self.passed != self.runner_nonces + self.dropped:
            found.append(f"driver passed {self.passed} but the runner took {self.runner_nonces}")
        if self.runner_nonces != self.dispatcher_nonces:
            found.append(
                f"runner took {self.runner_nonces}, dispatcher classified {self.dispatcher_nonces}"
            )
        return found


class Rig:
    """A running daemon with its chains and pools, plus the checks scenarios share."""

    def __init__(
        self,
        daemon: Daemon,
        servers: list[EmulatorServer],
        plans: Sequence[ChainPlan],
    ) -> None:
        self.daemon = daemon
        self.servers = servers
        self.plans = list(plans)
        self.status_lines: list[str] = []
        self.drivers: dict[str, list[AsicDriver]] = {p.name: [] for p in plans}
        self.task: asyncio.Task[int] | None = None
        self._sampler: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run(), name="chaos-daemon")
        self._sampler = asyncio.create_task(self._sample_drivers(), name="chaos-sampler")

    async def _sample_drivers(self) -> None:
        """Remember every driver instance, so their counters outlive a chain restart."""
        while True:
            for runner in self.daemon.runners:
                driver = runner.driver
                known = self.drivers[runner.name]
                if driver is not None and all(d is not driver for d in known):
                    known.append(driver)
            await asyncio.sleep(_POLL / 2)

    async def stop(self) -> int:
        """Stop the daemon cleanly; returns its exit status."""
        assert self.task is not None
        if not self.task.done():
            self.daemon.request_stop()
        async with asyncio.timeout(30):
            rc = await self.task
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        return rc

    async def finish(self, pools: Sequence[LocalPool], *, lossy_line: bool = False) -> None:
        """The checks every scenario ends with, then a clean stop (exit status 0)."""
        self.assert_alive()
        await self.quiesce()
        for ledger in self.ledgers():
            assert ledger.problems(lossy_line=lossy_line) == [], ledger
        problems = self.share_problems(pools)
        assert problems == [], problems
        assert await self.stop() == 0

    # -- the four questions ---------------------------------------------------------------

    def assert_alive(self) -> None:
        """The daemon's run() task is still going (it has not crashed or given up)."""
        assert self.task is not None
        if self.task.done():
            raise AssertionError(f"daemon task ended: {self.task!r}")

    def snapshot(self) -> DaemonSnapshot:
        return self.daemon.snapshot()

    def status(self) -> str:
        return status_line(self.snapshot())

    async def wait_for(
        self, condition: Callable[[], bool], what: str, within: float = 45.0
    ) -> float:
        """Seconds until ``condition`` holds; AssertionError naming ``what`` after ``within``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not condition():
            self.assert_alive()
            if loop.time() - start > within:
                raise AssertionError(f"{what}: not within {within} s ({self.status()})")
            await asyncio.sleep(_POLL)
        return loop.time() - start

    async def wait_mining(self, pool: LocalPool, more: int = 1, within: float = 45.0) -> float:
        """Seconds until ``pool`` has accepted ``more`` shares beyond what it has now."""
        target = len(pool.accepted) + more
        return await self.wait_for(
            lambda: len(pool.accepted) >= target,
            f"{pool.url} accepting {more} more share(s)",
            within,
        )

    async def quiesce(self, within: float = 30.0) -> None:
        """Kill every emulated core, then wait until no nonce is left in transit."""
        for plan, server in zip(self.plans, self.servers, strict=True):
            server.chain.faults.dead_chips = frozenset(range(plan.chips))
        stable, last = 0, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while stable < 10:
            self.assert_alive()
            ledgers = self.ledgers()
            key = [(c.seen, c.passed, c.runner_nonces, c.dispatcher_nonces) for c in ledgers]
            settled = all(c.runner_nonces == c.dispatcher_nonces for c in ledgers)
            stable = stable + 1 if key == last and settled else 0
            last = key
            if loop.time() > deadline:
                raise AssertionError(f"nonce pipeline did not settle: {ledgers}")
            await asyncio.sleep(_POLL)

    def ledgers(self) -> list[ChainLedger]:
        snap = self.snapshot()
        devices = {d.name: d for d in snap.dispatch.devices}
        runners = {r.name: r for r in self.daemon.runners}
        result = []
        for plan, server in zip(self.plans, self.servers, strict=True):
            faults = server.chain.faults
            drivers = [d for d in self.drivers[plan.name] if isinstance(d, Bm13xxDriver)]
            counters = [c for d in drivers for c in d.counters]
            result.append(
                ChainLedger(
                    name=plan.name,
                    emitted=faults.nonces_sent + faults.duplicates_sent - faults.dropped_replies,
                    seen=sum(c.nonces + c.duplicates + c.hw_errors for c in counters),
                    corrupted_bytes=faults.corrupted_bytes,
                    crc_errors=sum(d.crc_errors for d in drivers),
                    passed=sum(c.nonces for c in counters),
                    duplicates=sum(c.duplicates for c in counters),
                    stale=sum(d.stale_nonces for d in drivers),
                    hw_errors=sum(c.hw_errors for c in counters),
                    dropped=sum(d.dropped_nonces for d in drivers),
                    runner_nonces=runners[plan.name].status.nonces,
                    dispatcher_nonces=devices[plan.name].total.nonces.total,
                    drivers=len(drivers),
                )
            )
        return result

    def share_problems(self, pools: Sequence[LocalPool]) -> list[str]:
        """The dispatcher's share ledger must balance and agree with what pools recorded."""
        d = self.snapshot().dispatch
        found: list[str] = []
        if not d.balanced:
            found.append(
                f"share ledger unbalanced: found {d.found_shares} != accepted {d.accepted} "
                f"+ rejected {d.rejected} + lost {d.lost} + pending {d.pending} "
                f"+ in flight {d.in_flight}"
            )
        if d.untracked_outcomes:
            found.append(f"{d.untracked_outcomes} outcomes for shares never in flight")
        pool_accepted = sum(len(p.accepted) for p in pools)
        if pool_accepted < d.accepted:
            found.append(f"daemon counts {d.accepted} accepted, the pools only {pool_accepted}")
        bad = invalid_rejects(pools)
        if bad:
            found.append(f"{len(bad)} invalid shares sent, e.g. {bad[0]}")
        return found


@contextlib.asynccontextmanager
async def run_rig(
    workdir: Path,
    pools: Sequence[PoolEntry],
    chains: Sequence[ChainPlan] | None = None,
    *,
    extra_toml: str = "",
    before_start: Callable[[Rig], Awaitable[None]] | None = None,
    services: Callable[[Config], Sequence[Service]] | None = None,
) -> AsyncIterator[Rig]:
    """Serve the chains (default: one 2-chip BM1366), run the daemon on them, then stop.

    ``services`` builds the daemon's companions (APIs, MQTT) from the parsed config.
    """
    chains = [ChainPlan()] if chains is None else chains
    emulated = [plan.build() for plan in chains]
    links = [str(workdir / f"asic-{plan.name}") for plan in chains]
    text = config_toml(pools, list(zip(chains, links, strict=True)), extra_toml)
    config = parse_config(text)
    async with serve_chains(emulated, links) as servers:
        status_lines: list[str] = []
        daemon = Daemon(
            config,
            emit_status=status_lines.append,
            handle_signals=False,
            services=services(config) if services is not None else (),
        )
        rig = Rig(daemon, servers, chains)
        rig.status_lines = status_lines
        if before_start is not None:
            await before_start(rig)
        rig.start()
        try:
            yield rig
        finally:
            assert rig.task is not None
            if not rig.task.done():
                await rig.stop()


def log_events(stream: io.StringIO) -> list[dict[str, Any]]:
    """The captured structlog output as events; a line that is not JSON fails the test."""
    return [json.loads(text) for text in stream.getvalue().splitlines() if text.strip()]


def error_events(stream: io.StringIO) -> list[dict[str, Any]]:
    """Captured events at error level or above (the daemon's own alarm bell)."""
    return [e for e in log_events(stream) if e.get("level") in ("error", "critical")]
