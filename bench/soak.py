"""Soak run: the real daemon under rotating chaos for minutes, with figures at the end.

Two emulated chains (a 2-chip BM1366 and a BM1397) mine through a hostile proxy into an
honest local pool that validates every share. Every few seconds one fault is applied:
the pool is killed and restarted, a burst of fuzzed lines is injected, the pool goes
half-open, a line is torn by a TCP reset, or a serial device is unplugged and plugged
back. After each fault the run waits for the pool to accept a share again and records
how long that took. Memory (RSS) is sampled throughout.

    python3 bench/soak.py --minutes 10

The last line printed is one JSON object: pool restarts survived, median and worst time
back to mining, fuzzed lines handled, serial unplugs survived, shares lost, invalid
shares sent, nonce-ledger problems and memory samples (first/last third, to show no
growth). The pools and emulators share the process, so ``--trace-memory`` also samples,
with tracemalloc, the bytes held by objects the daemon's own code allocated
(``stratum_client`` and ``drivers``, minus the test pool and the emulator) and reports
the source lines whose holdings grew most after the first minute. Tracing slows
hashing several times over, so time-to-recover figures come from runs without it.

The daemon's bounded duplicate windows (``DEDUPE_WINDOW`` nonces in the dispatcher,
8 192 per chain in the driver) fill at the rate nonces arrive. ``--nonce-rate K`` makes
the emulated chips report K times as many nonces for the same hashing (a K times smaller
difficulty scale; shares per second stay the same), so a run can fill them and then show
whether memory stays flat: the report then says when the dispatcher's window filled, the
daemon heap at that moment and after it, and which lines grew since.

    python3 bench/soak.py --minutes 15 --trace-memory --nonce-rate 256
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "chaos"))

from chaos_rig import (
    POOL_DIFFICULTY,
    SCALE,
    ChainPlan,
    PoolEntry,
    Rig,
    accepted_twice,
    error_events,
    invalid_rejects,
    run_rig,
)
from hostile_pool import HostileProxy, fuzz_lines

from stratum_client.daemon.dispatcher import DEDUPE_WINDOW
from stratum_client.logsetup import configure_logging
from stratum_client.testing.pool import LocalPool

RECOVERY_TIMEOUT = 60.0
"""A fault after which no share is accepted within this long counts as not survived."""
RSS_INTERVAL = 5.0
FAULTS = ("pool_restart", "fuzz", "half_open", "reset_mid_line", "unplug")


_DAEMON_CODE = (
    tracemalloc.Filter(True, "*/stratum_client/*"),
    tracemalloc.Filter(True, "*/drivers/*"),
    tracemalloc.Filter(False, "*/stratum_client/testing/*"),
    tracemalloc.Filter(False, "*/drivers/emulator/*"),
)


def daemon_heap() -> tracemalloc.Snapshot:
    """Live objects allocated in the daemon's own code."""
    return tracemalloc.take_snapshot().filter_traces(_DAEMON_CODE)


def kib(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename")) // 1024


def growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> list[str]:
    """The five source lines whose live allocations grew most between two snapshots."""
    top = after.compare_to(before, "lineno")[:5]
    return [
        f"{d.traceback[0].filename.split('/')[-1]}:{d.traceback[0].lineno} "
        f"{d.size_diff // 1024:+d} KiB ({d.count_diff:+d} blocks)"
        for d in top
    ]


def rss_kib() -> int:
    """Resident set size of this process, from /proc."""
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1])
    return 0


class Soak:
    """Applies faults in turn and keeps the figures."""

    def __init__(self, rig: Rig, pool: LocalPool, proxy: HostileProxy, rng: random.Random):
        self.rig, self.pool, self.proxy, self.rng = rig, pool, proxy, rng
        self.survived: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.back: dict[str, list[float]] = {name: [] for name in FAULTS}
        self.fuzzed = 0
        self.lost_by_fault: Counter[str] = Counter()

    async def recovered(self, kind: str) -> None:
        """Wait for the next accepted share after a fault; record the time it took."""
        try:
            seconds = await self.rig.wait_mining(self.pool, 1, RECOVERY_TIMEOUT)
        except AssertionError as exc:
            print(f"not recovered after {kind}: {exc}", file=sys.stderr)
            self.failed[kind] += 1
            return
        self.survived[kind] += 1
        self.back[kind].append(seconds)

    async def pool_restart(self) -> None:
        await self.pool.stop()
        await asyncio.sleep(self.rng.uniform(0.1, 3.0))
        await self.pool.start()
        await self.recovered("pool_restart")

    async def fuzz(self) -> None:
        lines = fuzz_lines(self.rng, self.rng.randrange(10, 60))
        if await self.proxy.inject(lines):
            self.fuzzed += len(lines)
        await self.proxy.restore()
        await self.recovered("fuzz")

    async def half_open(self) -> None:
        self.proxy.half_open = True
        seen = self.proxy.connections
        await self.rig.wait_for(lambda: self.proxy.connections > seen, "reconnect", 30)
        self.proxy.half_open = False
        await self.recovered("half_open")

    async def reset_mid_line(self) -> None:
        await self.proxy.reset_mid_line()
        await self.recovered("reset_mid_line")

    async def unplug(self) -> None:
        server = self.rng.choice(self.rig.servers)
        server.unplug()
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        await server.plug()
        await self.recovered("unplug")

    async def run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        await self.rig.wait_mining(self.pool, 2)
        while loop.time() < end:
            kind = self.rng.choice(FAULTS)
            lost = self.rig.snapshot().dispatch.lost
            await getattr(self, kind)()
            self.rig.assert_alive()
            self.lost_by_fault[kind] += self.rig.snapshot().dispatch.lost - lost
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))


class Memory:
    """RSS samples, and with tracing on, daemon-heap samples and a baseline snapshot."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.rss: list[int] = []
        self.heap: list[int] = []
        self.baseline: tracemalloc.Snapshot | None = None
        self.started = time.monotonic()
        self.classified: Callable[[], int] = lambda: 0
        """Nonces the dispatcher has classified so far (set once the rig runs)."""
        self.full_at: float | None = None
        self.full_sample = 0
        """Index of the first sample taken with the dispatcher's window full."""
        self.at_full: tracemalloc.Snapshot | None = None

    async def sample(self) -> None:
        while True:
            self.rss.append(rss_kib())
            full = self.full_at is None and self.classified() >= DEDUPE_WINDOW
            if full:
                self.full_at = time.monotonic() - self.started
                self.full_sample = len(self.rss) - 1
            if self.trace:
                snapshot = daemon_heap()
                self.heap.append(kib(snapshot))
                if self.baseline is None and time.monotonic() - self.started > 60:
                    self.baseline = snapshot
                if full:
                    self.at_full = snapshot
            await asyncio.sleep(RSS_INTERVAL)

    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = {"rss": thirds(self.rss), "rss_samples_kib": self.rss}
        if self.full_at is not None:
            result["windows_full"] = self.after_full()
        if self.trace:
            result["daemon_heap"] = thirds(self.heap)
            result["daemon_heap_samples_kib"] = self.heap
            if self.baseline is not None:
                result["daemon_heap_growth_after_1_min"] = growth(self.baseline, daemon_heap())
        return result

    def after_full(self) -> dict[str, Any]:
        """Memory from the moment the dispatcher's duplicate window was full."""
        assert self.full_at is not None
        at, after = self.full_sample, self.rss[self.full_sample :]
        figures: dict[str, Any] = {
            "after_s": round(self.full_at, 1),
            "rss_then_kib": self.rss[at],
            "rss_max_after_kib": max(after),
            "rss_end_kib": after[-1],
        }
        if self.trace and self.at_full is not None:
            heap = self.heap[at:]
            figures |= {
                "daemon_heap_then_kib": heap[0],
                "daemon_heap_max_after_kib": max(heap),
                "daemon_heap_end_kib": heap[-1],
                "daemon_heap_growth_since": growth(self.at_full, daemon_heap()),
            }
        return figures


def thirds(values: list[int]) -> dict[str, int]:
    third = max(1, len(values) // 3)
    return {
        "first_third_max_kib": max(values[:third]),
        "last_third_max_kib": max(values[-third:]),
        "peak_kib": max(values),
    }


def seconds_summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "worst": None}
    return {"median": round(statistics.median(values), 3), "worst": round(max(values), 3)}


async def soak(minutes: float, seed: int, trace: bool, nonce_rate: int = 1) -> dict[str, Any]:
    logs = io.StringIO()
    configure_logging("warning", "json", {}, logs)
    rng = random.Random(seed)
    if trace:
        tracemalloc.start()
    memory = Memory(trace)
    sampler = asyncio.create_task(memory.sample())
    scale = SCALE / nonce_rate
    chains = [
        ChainPlan("a", "bm1366", 2, scale=scale),
        ChainPlan("b", "bm1397", 1, seed=3, scale=scale),
    ]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        async with (
            LocalPool(difficulty=POOL_DIFFICULTY, job_interval=10) as pool,
            HostileProxy(pool.host, pool.port) as proxy,
            run_rig(Path(workdir), [PoolEntry(proxy.url, "main")], chains) as rig,
        ):
            run = Soak(rig, pool, proxy, rng)
            memory.classified = lambda: rig.snapshot().dispatch.total.nonces.total
            await run.run(minutes * 60)
            rig.assert_alive()
            await rig.quiesce()
            ledgers = rig.ledgers()
            problems = [p for c in ledgers for p in c.problems(lossy_line=True)]
            share_problems = rig.share_problems([pool])
            snap = rig.snapshot().dispatch
            rc = await rig.stop()
    sampler.cancel()
    report = memory.report()
    tracemalloc.stop()
    every = [s for values in run.back.values() for s in values]
    return {
        "minutes": round((time.monotonic() - started) / 60, 2),
        "seed": seed,
        "nonce_rate": nonce_rate,
        "daemon_exit_status": rc,
        "pool_restarts_survived": run.survived["pool_restart"],
        "faults_survived": dict(run.survived),
        "faults_not_recovered": dict(run.failed),
        "time_back_to_mining_s": seconds_summary(every),
        "time_back_by_fault_s": {k: seconds_summary(v) for k, v in run.back.items()},
        "fuzzed_lines_handled": run.fuzzed,
        "serial_unplugs_survived": run.survived["unplug"],
        "frames_lost_in_unplugs": sum(c.lost_on_line for c in ledgers),
        "accepted_shares": snap.accepted,
        "pool_accepted": len(pool.accepted),
        "shares_lost": snap.lost,
        "shares_lost_by_reason": dict(snap.lost_by_reason),
        "shares_lost_by_fault": {k: v for k, v in run.lost_by_fault.items() if v},
        "pool_credited_twice": len(accepted_twice(pool)),
        "invalid_shares_sent": len(invalid_rejects([pool])),
        "ledger_problems": problems + share_problems,
        "error_log_events": len(error_events(logs)),
        "nonces_classified": sum(c.dispatcher_nonces for c in ledgers),
        **report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak")
    parser.add_argument("--seed", type=int, default=7, help="seed for the fault sequence")
    parser.add_argument(
        "--trace-memory", action="store_true", help="also sample the daemon's own heap"
    )
    parser.add_argument(
        "--nonce-rate",
        type=int,
        default=1,
        help="report K times as many nonces (fills the duplicate windows sooner)",
    )
    args = parser.parse_args()
    if not args.minutes > 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if args.nonce_rate < 1:
        parser.error(f"--nonce-rate must be ≥ 1, got {args.nonce_rate}")
    result = asyncio.run(soak(args.minutes, args.seed, args.trace_memory, args.nonce_rate))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
