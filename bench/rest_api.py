"""HTTP API cost: one ``/metrics`` scrape, one ``/api/system/info``, the history file size.

Run ``python bench/rest_api.py``. A host of 4 chains × 16 chips, 3 pools and 12 board
readings; each timing is the median of repeated requests over loopback to a real server
(aiohttp client and server on one event loop), plus the collector alone in-process. The
history figure is the size of the SQLite file after 24 h of one sample a minute.
Prints readable lines, then one JSON object on the last line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import structlog
from prometheus_client import generate_latest

from stratum_client.api.model import ChipState, DeviceState, Hashrate, MinerState, Reading
from stratum_client.api.rest_history import sample_of
from stratum_client.api.rest_metrics import MinerCollector, registry_for
from stratum_client.api.rest_server import RestServer
from stratum_client.api.server import Admission
from stratum_client.config import ListenAddress
from stratum_client.history import HistoryStore
from stratum_client.pool.types import PoolStatus

REPEATS = 200


def host() -> MinerState:
    chains = tuple(
        DeviceState(f"chain{n}", "BM1366", 16, 485.0, hashrate=Hashrate(7e11, 7e11, 7e11, 7e11),
                    accepted=100, temperature_c=55.0, power_w=12.0,
                    chip_counters=tuple(ChipState(i, nonces=1000 + i) for i in range(16)))
        for n in range(4)
    )  # fmt: skip
    pools = tuple(
        PoolStatus(i, f"p{i}", f"stratum+tcp://pool{i}.example:3333", "w", "active" if i == 0
                   else "standby", i, 2048.0, 100, 1, 0, 1, 0, "", 0)
        for i in range(3)
    )  # fmt: skip
    readings = tuple(
        Reading("temperature_celsius", 50.0 + i, (("board", f"b{i // 3}"), ("sensor", f"s{i}")))
        for i in range(12)
    )
    rate = Hashrate(2.8e12, 2.8e12, 2.8e12, 2.8e12)
    return MinerState("0.1.0", "bench", time.time(), 3600.0, rate, accepted=400,
                      devices=chains, pools=pools, readings=readings)  # fmt: skip


class _Control:
    pass


async def timed_gets(port: int, path: str) -> list[float]:
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(REPEATS):
            start = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}{path}") as reply:
                await reply.read()
                assert reply.status == 200, reply.status
            times.append(time.perf_counter() - start)
    return times


async def http_figures(state: MinerState) -> dict[str, float]:
    server = RestServer(ListenAddress("127.0.0.1", 0), lambda: state, _Control())  # type: ignore[arg-type]
    server.admit = lambda peer: Admission.SERVE  # type: ignore[method-assign]  # no rate limit
    async with server:
        metrics = await timed_gets(server.port, "/metrics")
        info = await timed_gets(server.port, "/api/system/info")
    return {
        "metrics_scrape_ms": statistics.median(metrics) * 1000,
        "system_info_ms": statistics.median(info) * 1000,
    }


def collector_ms(state: MinerState) -> tuple[float, int]:
    registry = registry_for(MinerCollector(lambda: state))
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        text = generate_latest(registry)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, len(text)


def history_bytes(state: MinerState) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "history.sqlite"
        store = HistoryStore(path)
        for minute in range(24 * 60):
            store.append(sample_of(replace(state, when=state.when + 60 * minute)))
        store.close()
        return sum(p.stat().st_size for p in path.parent.iterdir()), len(sample_of(state).series)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    state = host()
    report: dict[str, object] = {"bench": "rest_api", "repeats": REPEATS}
    report.update(asyncio.run(http_figures(state)))
    report["collector_ms"], report["metrics_bytes"] = collector_ms(state)
    report["history_24h_bytes"], report["history_series"] = history_bytes(state)
    for key, value in report.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
