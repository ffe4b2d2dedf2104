"""Alerts from a live daemon to a local HTTP sink (aiohttp's server), and a dead sink.

The conditions are real: the local pool is stopped (pool down) and told to reject
everything (reject rate), an emulated chain's chips are killed (chain dead), and a
safe-state notice is announced the way the boards layer will. Block candidates are
mined for real against a pool announcing a regtest network target; in the test of the
other kinds, where the pool's target is mainnet's, one is fed to the policy instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from live_helpers import WAIT, wait_until

from stratum_client.alerts.policy import Observation, SafeStateEntered
from stratum_client.config import parse_config
from stratum_client.daemon.alerts import AlertService
from stratum_client.daemon.app import Daemon
from stratum_client.testing.pool import REGTEST_NBITS, LocalPool

if TYPE_CHECKING:
    from tests.daemon.conftest import Emulated, PoolFactory


@dataclass
class Sink:
    """An HTTP server recording every POST; ``/hang/…`` paths never answer."""

    port: int = 0
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    hanging: int = 0
    """Requests held open right now on ``/hang`` paths."""

    def kinds(self, path: str) -> list[str]:
        return [_kind(path, headers, body) for p, headers, body in self.posts if p == path]


def _kind(path: str, headers: dict[str, str], body: bytes) -> str:
    if "Tags" in headers:  # ntfy
        return headers["Tags"].split(",")[1]
    document = json.loads(body)
    if path.endswith("discord"):
        return str(document["embeds"][0]["title"])
    return str(document["kind"])


@contextlib.asynccontextmanager
async def http_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    never = asyncio.Event()

    async def record(request: web.Request) -> web.Response:
        sink.posts.append((request.path, dict(request.headers), await request.read()))
        return web.Response(text="ok")

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        sink.hanging += 1
        try:
            await never.wait()
        finally:
            sink.hanging -= 1
        return web.Response(text="late")

    async def flaky(request: web.Request) -> web.Response:
        """Answers 503 to the first ``failures`` posts, then 200."""
        await record(request)
        seen = sum(1 for path, _, _ in sink.posts if path == request.path)
        return web.Response(status=503 if seen <= int(request.match_info["failures"]) else 200)

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=int(request.match_info["code"]))

    app = web.Application()
    app.router.add_post("/hang/{name}", hang)
    app.router.add_post("/flaky/{failures}", flaky)
    app.router.add_post("/status/{code}", status)
    app.router.add_post("/{name}", record)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _alerts_table(hooks: list[tuple[str, str, str]], **keys: object) -> str:
    """``hooks``: (name, url, format); every webhook waits up to 300 s for an answer."""
    lines = ["[alerts]", *(f"{k} = {v!r}" for k, v in keys.items())]
    for name, url, style in hooks:
        lines += [
            "[[alerts.webhooks]]",
            f'name = "{name}"',
            f'url = "{url}"',
            f'format = "{style}"',
            "timeout = 300",
        ]
    return "\n".join(lines).replace("'", '"') + "\n"


@contextlib.asynccontextmanager
async def alerting_daemon(
    emulated: Emulated, pool: LocalPool, alerts: str
) -> AsyncIterator[tuple[Daemon, AlertService, asyncio.Task[int]]]:
    config = parse_config(emulated.config([pool], extra=alerts))
    service = AlertService(config.alerts, host="rig-under-test")
    daemon = Daemon(config, handle_signals=False, services=[service])
    task = asyncio.create_task(daemon.run(), name="daemon-under-test")
    try:
        yield daemon, service, task
    finally:
        daemon.request_stop()
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            await task


async def until(what: str, predicate: Callable[[], bool], task: asyncio.Task[int]) -> None:
    def check() -> bool:
        if task.done():
            raise AssertionError(f"daemon ended ({task.result()}) while waiting: {what}")
        return predicate()

    await wait_until(what, check)


FAST = {
    "interval": 0.1,
    "pool_down_after": 1.0,
    "chain_dead_after": 2.0,
    "rejected_percent": 50.0,
    "rejected_window": 3.0,
    "rejected_min_shares": 3,
    "rate_per_minute": 600.0,
    "burst": 20,
    "retry_initial": 0.05,
    "retry_max": 0.2,
}
KINDS = ["block_found", "pool_down", "chain_dead", "rejected_rate", "safe_state"]


async def test_every_alert_kind_reaches_every_webhook_once_per_condition(
    emulated_chains: Emulated, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with http_sink() as sink:
        base = f"http://127.0.0.1:{sink.port}"
        hooks = [(s, f"{base}/{s}", s) for s in ("json", "ntfy", "discord")]
        alerts = _alerts_table(hooks, **FAST)
        async with alerting_daemon(emulated_chains, pool, alerts) as (daemon, service, task):
            await until("shares accepted", lambda: len(pool.accepted) >= 3, task)

            await pool.stop()  # the pool goes away: down after pool_down_after
            await until("pool_down", lambda: "pool_down" in sink.kinds("/json"), task)
            await asyncio.sleep(1.0)  # still down: no second alert
            await pool.start()
            await until("pool back", lambda: daemon.snapshot().dispatch.session_up, task)

            pool.reject_all = True
            await until("rejected_rate", lambda: "rejected_rate" in sink.kinds("/json"), task)
            await asyncio.sleep(1.0)  # still rejecting: no second alert
            pool.reject_all = False

            chain = emulated_chains.chains["b"]
            chain.faults.dead_chips = frozenset(range(chain.chip_count))
            await until("chain_dead", lambda: "chain_dead" in sink.kinds("/json"), task)

            daemon.announce(SafeStateEntered("board-0", "ASIC temperature 96 °C"))
            daemon.announce(SafeStateEntered("board-0", "ASIC temperature 97 °C"))
            seen = Observation(blocks_found=1, accepted=0, rejected=0)
            service.raise_alerts(service.policy.observe(seen, daemon.snapshot().dispatch.at))

            def all_delivered() -> bool:
                return all(box.sent == 5 for box in service.outboxes.values())

            await until("every alert delivered", all_delivered, task)
            await asyncio.sleep(1.0)  # conditions still hold: nothing more may arrive
    assert sorted(sink.kinds("/json")) == sorted(KINDS), [
        b for p, _, b in sink.posts if p == "/json"
    ]
    assert sorted(sink.kinds("/ntfy")) == sorted(KINDS)
    titles = sink.kinds("/discord")
    assert len(titles) == 5
    assert "pool pool0 down" in titles
    assert "chain b dead" in titles
    assert "block candidate found" in titles
    [ntfy_pool] = [h for p, h, _ in sink.posts if p == "/ntfy" and "pool_down" in h["Tags"]]
    assert ntfy_pool["Title"] == "rig-under-test: pool pool0 down"
    assert all(box.failed == box.dropped == 0 for box in service.outboxes.values())


async def test_a_dead_or_hanging_sink_never_holds_up_a_share(
    emulated_chains: Emulated, pool_factory: PoolFactory
) -> None:
    """Shares are counted, not timed, in two phases of one run: without alerts, then while
    one webhook holds a request unanswered and another is refused and retried. In both,
    the pool receives as many shares, and no share found ever waits in the daemon (none
    pending, none lost, at every sample)."""
    pool = await pool_factory()
    async with http_sink() as sink:
        hooks = [
            ("hung", f"http://127.0.0.1:{sink.port}/hang/a", "json"),
            ("refused", f"http://127.0.0.1:{_closed_port()}/a", "discord"),
        ]
        alerts = _alerts_table(hooks, **{**FAST, "retries": 100, "queue_size": 4})
        async with alerting_daemon(emulated_chains, pool, alerts) as (daemon, service, task):
            await until("shares accepted", lambda: len(pool.accepted) >= 3, task)
            calm = await _phase(daemon, pool, task, 8)

            for board in range(50):  # alerts pile up; raising them never waits
                daemon.announce(SafeStateEntered(f"board-{board}", "test"))
            hung, refused = service.outboxes["hung"], service.outboxes["refused"]
            assert hung.dropped == refused.dropped >= 50 - 4 - 1  # counted at once, no await
            await until("a request held open", lambda: sink.hanging == 1, task)
            await until("retries refused", lambda: refused.attempts >= 3, task)
            stormy = await _phase(daemon, pool, task, 8)
            assert sink.hanging == 1  # the hung request stayed open the whole phase
            d = daemon.snapshot().dispatch
    assert calm.waited == stormy.waited == 0, (calm, stormy)
    assert calm.received >= 8
    assert stormy.received >= 8
    assert d.balanced
    assert hung.sent == refused.sent == 0


@dataclass
class _Phase:
    received: int = 0
    """Shares the pool received during the phase."""
    waited: int = 0
    """Samples at which a found share was waiting in the daemon (pending or lost)."""


async def _phase(daemon: Daemon, pool: LocalPool, task: asyncio.Task[int], shares: int) -> _Phase:
    """Sample every 20 ms until the pool has received ``shares`` more submits."""
    start = len(pool.submits)
    phase = _Phase()

    def sample() -> bool:
        d = daemon.snapshot().dispatch
        phase.waited += d.pending + d.lost > 0 or not d.balanced
        phase.received = len(pool.submits) - start
        return phase.received >= shares

    await until(f"{shares} more submits", sample, task)
    return phase


async def test_transient_failures_are_retried_permanent_ones_not_and_posts_are_spaced(
    emulated_chains: Emulated, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with http_sink() as sink:
        base = f"http://127.0.0.1:{sink.port}"
        hooks = [
            ("flaky", f"{base}/flaky/2", "json"),  # 503, 503, then 200
            ("gone", f"{base}/status/404", "json"),
            ("spaced", f"{base}/spaced", "ntfy"),
        ]
        table = _alerts_table(hooks, **{**FAST, "rate_per_minute": 1.0, "burst": 2})
        kinds = {"flaky": "block_found", "gone": "block_found", "spaced": "safe_state"}
        for name, kind in kinds.items():
            table = table.replace(f'name = "{name}"', f'name = "{name}"\nkinds = ["{kind}"]')
        async with alerting_daemon(emulated_chains, pool, table) as (daemon, service, task):
            await until("shares accepted", lambda: len(pool.accepted) >= 1, task)
            seen = Observation(blocks_found=1, accepted=0, rejected=0)
            service.raise_alerts(service.policy.observe(seen, daemon.snapshot().dispatch.at))
            for board in range(5):
                daemon.announce(SafeStateEntered(f"board-{board}", "test"))
            boxes = service.outboxes
            await until("flaky delivered", lambda: boxes["flaky"].sent == 1, task)
            await until("gone given up", lambda: boxes["gone"].failed == 1, task)
            await until("the burst posted", lambda: boxes["spaced"].sent == 2, task)
            await asyncio.sleep(0.5)  # a third post would need 60 s of refill at 1/min
    assert (boxes["flaky"].attempts, boxes["flaky"].failed) == (3, 0)
    assert len([p for p, _, _ in sink.posts if p == "/flaky/2"]) == 3
    assert (boxes["gone"].attempts, boxes["gone"].sent) == (1, 0)  # 404: retrying cannot help
    assert (boxes["spaced"].sent, boxes["spaced"].attempts) == (2, 2)
    # the third waits for a token in the sender, the last two in the queue: none dropped
    assert (len(boxes["spaced"].queue), boxes["spaced"].dropped) == (2, 0)
    assert sink.kinds("/spaced") == ["safe_state", "safe_state"]


async def test_every_block_candidate_is_alerted_once(
    emulated_chains: Emulated, pool_factory: PoolFactory
) -> None:
    """Against a regtest target nearly every share is a candidate: the alerts, each naming
    how many candidates are new since the one before, add up to the daemon's count."""
    pool = await pool_factory(strict=True, nbits=REGTEST_NBITS)
    async with http_sink() as sink:
        hook = [("json", f"http://127.0.0.1:{sink.port}/json", "json")]
        table = _alerts_table(hook, **{**FAST, "rate_per_minute": 600.0, "burst": 100})
        table = table.replace('name = "json"', 'name = "json"\nkinds = ["block_found"]')

        def alerted() -> int:
            documents = [json.loads(body) for _, _, body in sink.posts]
            return sum(int(d["details"]["candidates"]) for d in documents)

        async with alerting_daemon(emulated_chains, pool, table) as (daemon, service, task):

            def blocks() -> int:
                return daemon.snapshot().dispatch.blocks_found

            await until("5 candidates", lambda: blocks() >= 5, task)
            for chain in emulated_chains.chains.values():
                chain.faults.dead_chips = frozenset(range(chain.chip_count))
            await until("every candidate alerted", lambda: alerted() == blocks(), task)
            await asyncio.sleep(1.0)  # ten more looks by the policy: nothing is alerted twice
            assert alerted() == blocks() >= 5
            box = service.outboxes["json"]
    kinds = [json.loads(body)["kind"] for _, _, body in sink.posts]
    assert set(kinds) == {"block_found"}
    assert len(kinds) == box.sent
    assert box.dropped == box.failed == 0
