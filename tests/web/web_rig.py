"""A live daemon for the dashboard tests (imported by ``conftest.py`` and the tests, under a
name no other test directory uses): emulated chains on ptys, a local validating pool,
and only the REST companion (with a write token and a one-second history interval)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from live_helpers import WAIT, wait_until

from stratum_client.config import ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.telemetry import RestService
from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import serve_chains

TOKEN = "dashboard-test-token"
SCALE = 2.0**-24
"""Emulated chips report nonces at ticket 256 × SCALE: many per second on a CPU."""
CHAINS = (("a", "bm1366", 4), ("b", "bm1397", 1))


@dataclass
class LiveWeb:
    daemon: Daemon
    pool: LocalPool
    rest: RestService
    task: asyncio.Task[int]

    @property
    def url(self) -> str:
        assert self.rest.server is not None
        return f"http://127.0.0.1:{self.rest.server.port}"

    def frequencies(self) -> dict[str, float | None]:
        """Each chain's frequency as the daemon reports it (MHz)."""
        return {chain.name: chain.frequency_mhz for chain in self.daemon.snapshot().chains}

    def paused(self) -> bool:
        chains = self.daemon.snapshot().chains
        return bool(chains) and all(chain.paused_by for chain in chains)


def _config_text(pool: LocalPool, links: list[tuple[str, str, int, str]], state: Path) -> str:
    parts = [
        f'[daemon]\nstate_dir = "{state}"\n',
        "[pool_policy]\nconnect_timeout = 2.0\nbackoff_initial = 0.2\nbackoff_max = 0.5\n",
        f'[[pools]]\nname = "local"\nurl = "{pool.url}"\nuser = "demo.w"\n',
    ]
    for name, driver, chips, link in links:
        parts.append(
            f'[[devices]]\nname = "{name}"\ndriver = "{driver}"\nport = "{link}"\n'
            f"chips = {chips}\ndifficulty_scale = {SCALE}\noptions = {{ramp_step_delay = 0}}\n"
        )
    parts.append(f'[api]\nrest_enabled = true\nrest_token = "{TOKEN}"\n')
    return "\n".join(parts)


@contextlib.asynccontextmanager
async def live_web_rig(tmp_path: Path) -> AsyncIterator[LiveWeb]:
    pool = LocalPool(difficulty=2.0**-15)
    await pool.start()
    chains = [EmulatedChain(driver, chips, difficulty_scale=SCALE) for _, driver, chips in CHAINS]
    links = [(n, d, c, str(tmp_path / f"tty-{n}")) for n, d, c in CHAINS]
    try:
        async with serve_chains(chains, [link for *_, link in links]):
            config = parse_config(_config_text(pool, links, tmp_path))
            api = dataclasses.replace(config.api, rest_listen=ListenAddress("127.0.0.1", 0))
            config = dataclasses.replace(config, api=api)
            rest = RestService(config)
            rest.history_interval = 1.0
            daemon = Daemon(config, handle_signals=False, services=[rest])
            task = asyncio.create_task(daemon.run(), name="daemon-under-test")
            live = LiveWeb(daemon, pool, rest, task)
            try:
                await wait_until("REST listening", rest.ready.is_set)
                await wait_until("two accepted shares", lambda: len(pool.accepted) >= 2)
                yield live
            finally:
                daemon.request_stop()
                daemon.request_stop()
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(WAIT):
                        await task
    finally:
        await pool.stop()
