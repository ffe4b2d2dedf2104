"""Dispatcher hot-path cost: ``next_work`` per unit and ``on_nonce`` per nonce.

Run ``python bench/dispatch.py``. Prints readable lines, then one JSON object on the last
line. Each figure is the median of several timed repeats. Nonces carry a synthetic hash of
a chosen difficulty (the dispatcher trusts the driver's hash), so the figures measure the
dispatcher itself: classification, de-duplication, counters and hashrate meters.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from stratum_client.asic.base import FoundNonce
from stratum_client.daemon.dispatcher import ChainSpec, Dispatcher
from stratum_client.pool.types import PoolUp, SessionEvent
from stratum_client.protocol import events as ev
from stratum_client.work import DIFF1_TARGET, Work, parse_notify

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "data" / "stratum_vectors.json"
REPEATS = 7
CALLS = 20_000


def _dispatcher(midstates: int) -> Dispatcher:
    vector = next(
        j for j in json.loads(VECTORS.read_text())["jobs"] if j["name"] == "slush-2023-diff683"
    )
    en1 = bytes.fromhex(vector["extranonce1"])
    job = parse_notify(
        vector["notify"],
        extranonce1=en1,
        extranonce2_size=8,
        difficulty=512.0,
        version_mask=0x1FFFE000,
    )
    dispatcher = Dispatcher([ChainSpec("chain", midstates=midstates, chips=4)])
    dispatcher.job_table(0).subscribed(en1, 8)
    dispatcher.job_table(0).add(job, clean=True)
    dispatcher.on_manager_event(SessionEvent(0, ev.NewJob(job, True)), 0.0)
    dispatcher.on_manager_event(PoolUp(0, "bench", en1, 8, False, 0.0), 0.0)
    return dispatcher


def _nonces(work: Work, difficulty: float) -> list[FoundNonce]:
    value = int(DIFF1_TARGET / difficulty)
    digest = value.to_bytes(32, "little")
    return [
        FoundNonce(work, n, work.version, n % 4, 0, digest, DIFF1_TARGET / value, 0.0)
        for n in range(CALLS)
    ]


def _median_us(run: Callable[[], None]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / CALLS * 1e6


def main() -> None:
    results: dict[str, float] = {}
    for midstates in (0, 4):
        dispatcher = _dispatcher(midstates)

        def build(d: Dispatcher = dispatcher) -> None:
            for _ in range(CALLS):
                d.next_work("chain", 1.0)

        results[f"next_work_midstates{midstates}_us"] = _median_us(build)
    for label, difficulty in (("below_difficulty", 300.0), ("share", 1000.0)):
        samples = []
        for _ in range(REPEATS):
            dispatcher = _dispatcher(0)
            work = dispatcher.next_work("chain", 0.0)
            assert work is not None
            nonces = _nonces(work, difficulty)
            start = time.perf_counter()
            for found in nonces:
                dispatcher.on_nonce("chain", found, 1.0)
            samples.append(time.perf_counter() - start)
        results[f"on_nonce_{label}_us"] = statistics.median(samples) / CALLS * 1e6
    for name, value in results.items():
        print(f"{name:32} {value:8.2f} µs")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
