"""Shared rigs for daemon integration tests: local pools, emulated chains, a live daemon.

Everything is real: pools listen on 127.0.0.1, chains are emulated on pseudo-terminals
and really hash, and the daemon runs its whole TaskGroup on the test's event loop. The
truths the tests assert against stay independent of the daemon: the pool's own list of
validated submits and the emulator's record of every nonce it reported.

Use the ``mining_rig`` fixture (a factory)::

    async with mining_rig(pools=[pool]) as rig:
        await rig.wait_until("shares", lambda: len(pool.accepted) >= 3)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.asic.base import AsicDriver
from stratum_client.config import Config, parse_config
from stratum_client.daemon.app import Daemon, DaemonSnapshot
from stratum_client.daemon.dispatcher import DispatchSnapshot
from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import EmulatorServer, serve_chains

SCALE = 2.0**-24
"""Emulated chips report nonces at ticket 256 × SCALE = 2**-16: many per second on a CPU."""
POOL_DIFFICULTY = 2.0**-15
"""About half of the nonces are shares: both classes show up in every test."""
FAST_POLICY: Mapping[str, object] = {
    "connect_timeout": 2.0,
    "backoff_initial": 0.2,
    "backoff_max": 0.5,
    "drain_timeout": 5.0,
}
"""Pool policy keys that keep reconnects quick in tests."""


@dataclass(frozen=True, slots=True)
class ChainSetup:
    """One emulated chain and the ``[[devices]]`` table that drives it."""

    name: str
    driver: str
    chips: int


DEFAULT_CHAINS = (ChainSetup("a", "bm1366", 4), ChainSetup("b", "bm1397", 1))
"""A full-header chain (chip-side version rolling) and a midstate chain."""


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """One ``[[pools]]`` table: a URL, a name and extra TOML keys (``ca_file = …``)."""

    url: str
    name: str
    extra: str = ""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def config_text(
    pools: Sequence[PoolEntry],
    links: Sequence[tuple[ChainSetup, str]],
    *,
    state_dir: Path,
    policy: Mapping[str, object] = FAST_POLICY,
    extra: str = "",
) -> str:
    """A complete config file for ``pools`` and emulated chains at ``links``."""
    parts = [f'[daemon]\nstate_dir = "{state_dir}"\n']
    if policy:
        keys = "\n".join(f"{k} = {_toml_value(v)}" for k, v in policy.items())
        parts.append(f"[pool_policy]\n{keys}\n")
    for entry in pools:
        parts.append(
            f'[[pools]]\nname = "{entry.name}"\nurl = "{entry.url}"\nuser = "demo.w"\n'
            f"{entry.extra}\n"
        )
    for setup, link in links:
        parts.append(
            f'[[devices]]\nname = "{setup.name}"\ndriver = "{setup.driver}"\n'
            f'port = "{link}"\nchips = {setup.chips}\ndifficulty_scale = {SCALE}\n'
            "options = {ramp_step_delay = 0}\n"
        )
    parts.append(extra)
    return "\n".join(parts)


@contextlib.contextmanager
def short_tmpdir() -> Iterator[Path]:
    """A directory with a short path: unix socket addresses are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="scd-", dir="/tmp") as name:
        yield Path(name)


@dataclass
class Rig:
    """A daemon mining on emulated chains against local pools."""

    daemon: Daemon
    config: Config
    config_path: Path
    pools: list[LocalPool]
    chains: dict[str, EmulatedChain]
    servers: dict[str, EmulatorServer]
    task: asyncio.Task[int]
    statuses: list[str] = field(default_factory=list)
    drivers: dict[str, AsicDriver] = field(default_factory=dict)
    """Each chain's driver as last seen running (its counters outlive the run)."""
    exit_status: int | None = None

    def snapshot(self) -> DaemonSnapshot:
        self._note_drivers()
        return self.daemon.snapshot()

    def dispatch(self) -> DispatchSnapshot:
        return self.snapshot().dispatch

    def _note_drivers(self) -> None:
        for runner in self.daemon.runners:
            if runner.driver is not None:
                self.drivers[runner.name] = runner.driver

    async def wait_until(
        self, what: str, predicate: Callable[[], bool], limit: float = WAIT
    ) -> None:
        """Like :func:`wait_until`, failing at once if the daemon ended early."""

        def check() -> bool:
            self._note_drivers()
            if self.task.done():
                raise AssertionError(f"daemon ended ({self.task.result()}) while waiting: {what}")
            return predicate()

        await wait_until(what, check, limit)

    async def wait_for_shares(self, pool: LocalPool, count: int) -> None:
        """Wait until ``pool`` has accepted ``count`` more shares than it has now."""
        target = len(pool.accepted) + count
        await self.wait_until(f"{count} accepted shares", lambda: len(pool.accepted) >= target)

    def freeze_chains(self) -> None:
        """Stop the emulated chips hashing (every chip marked dead), so counts settle."""
        for chain in self.chains.values():
            chain.faults.dead_chips = frozenset(range(chain.chip_count))

    async def stop(self) -> int:
        """Stop the daemon (as SIGTERM would) and return its exit status."""
        if self.exit_status is None:
            self._note_drivers()
            self.daemon.request_stop()
            async with asyncio.timeout(WAIT):
                self.exit_status = await self.task
        return self.exit_status


class RigFactory(Protocol):
    def __call__(
        self,
        pools: Sequence[LocalPool],
        *,
        pool_options: Sequence[str] = ...,
        chains: Sequence[ChainSetup] = ...,
        policy: Mapping[str, object] = ...,
        extra: str = ...,
        hashrate: float | None = ...,
    ) -> contextlib.AbstractAsyncContextManager[Rig]: ...


def new_pool(**kwargs: object) -> LocalPool:
    """A LocalPool at the test difficulty (keywords override)."""
    options: dict[str, object] = {"difficulty": POOL_DIFFICULTY}
    options.update(kwargs)
    return LocalPool(**options)  # type: ignore[arg-type]


PoolFactory = Callable[..., Awaitable[LocalPool]]


@pytest.fixture
async def pool_factory() -> AsyncIterator[PoolFactory]:
    """``await pool_factory(**LocalPool keywords)``: a started pool, stopped at teardown."""
    pools: list[LocalPool] = []

    async def make(**kwargs: object) -> LocalPool:
        pool = new_pool(**kwargs)
        await pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.stop()


@pytest.fixture
async def local_pool(pool_factory: PoolFactory) -> LocalPool:
    """A started LocalPool at the test difficulty, without periodic jobs."""
    return await pool_factory()


@dataclass
class Emulated:
    """Emulated chains being served, and the config text that mines on them."""

    chains: dict[str, EmulatedChain]
    servers: dict[str, EmulatorServer]
    links: list[tuple[ChainSetup, str]]
    state_dir: Path

    def config(
        self,
        pools: Sequence[LocalPool],
        *,
        policy: Mapping[str, object] = FAST_POLICY,
        extra: str = "",
    ) -> str:
        """A config file text mining on these chains against ``pools``."""
        entries = [PoolEntry(p.url, f"pool{i}") for i, p in enumerate(pools)]
        return config_text(
            entries, self.links, state_dir=self.state_dir, policy=policy, extra=extra
        )


@contextlib.asynccontextmanager
async def _serve(
    directory: Path, chains: Sequence[ChainSetup], hashrate: float | None
) -> AsyncIterator[Emulated]:
    emulated = {c.name: EmulatedChain(c.driver, c.chips, difficulty_scale=SCALE) for c in chains}
    links = [(c, str(directory / f"tty-{c.name}")) for c in chains]
    async with serve_chains(
        list(emulated.values()), [link for _, link in links], hashrate=hashrate
    ) as servers:
        by_name = {c.name: s for c, s in zip(chains, servers, strict=True)}
        yield Emulated(emulated, by_name, links, directory)


@pytest.fixture
async def emulated_chains(tmp_path: Path) -> AsyncIterator[Emulated]:
    """The default chains (BM1366×4 and BM1397×1) served on ptys for the whole test, for
    daemons run as another process: ``emulated_chains.config([pool])`` is their config."""
    async with _serve(tmp_path, DEFAULT_CHAINS, None) as emulated:
        yield emulated


@pytest.fixture
def mining_rig(tmp_path: Path) -> RigFactory:
    """Factory: ``async with mining_rig([pool, …]) as rig`` runs a daemon until the block
    ends (then stops it). ``pool_options[i]`` adds TOML keys to pool ``i``'s table."""

    @contextlib.asynccontextmanager
    async def factory(
        pools: Sequence[LocalPool],
        *,
        pool_options: Sequence[str] = (),
        chains: Sequence[ChainSetup] = DEFAULT_CHAINS,
        policy: Mapping[str, object] = FAST_POLICY,
        extra: str = "",
        hashrate: float | None = None,
    ) -> AsyncIterator[Rig]:
        options = [*pool_options, *[""] * len(pools)]
        entries = [PoolEntry(p.url, f"pool{i}", options[i]) for i, p in enumerate(pools)]
        async with _serve(tmp_path, chains, hashrate) as emulated:
            text = config_text(
                entries, emulated.links, state_dir=tmp_path, policy=policy, extra=extra
            )
            path = tmp_path / "stratum-client.toml"
            path.write_text(text)
            config = parse_config(text)
            statuses: list[str] = []
            daemon = Daemon(
                config, config_path=path, handle_signals=False, emit_status=statuses.append
            )
            task = asyncio.create_task(daemon.run(), name="daemon-under-test")
            rig = Rig(
                daemon,
                config,
                path,
                list(pools),
                emulated.chains,
                emulated.servers,
                task,
                statuses,
            )
            try:
                yield rig
            finally:
                if not task.done():
                    rig.daemon.request_stop()
                    rig.daemon.request_stop()  # do not wait out the drain on failure paths
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(WAIT):
                        await task
        if rig.exit_status is not None:
            assert rig.exit_status == 0

    return factory


def env_without_notify() -> dict[str, str]:
    """The environment for a daemon subprocess, without an inherited NOTIFY_SOCKET."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    return env
