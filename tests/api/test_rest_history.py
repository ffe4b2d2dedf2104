"""The per-minute history: survives a restart, keeps 24 h in well under 5 MB, and feeds
``/api/system/statistics`` and ``/api/history`` (series appear when the daemon has them)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratum_client.api.model import MinerState, Reading
from stratum_client.api.rest import STAT_LABELS
from stratum_client.api.rest_history import sample_of
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress
from stratum_client.history import RETENTION, HistoryStore, Sample

if TYPE_CHECKING:
    from conftest import RecordingControl

MB = 1024 * 1024


async def get_json(port: int, path: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: miner\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return json.loads(body)


def files_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_a_day_at_one_a_minute_stays_under_5_mb_and_older_rows_go(
    tmp_path: Path, make_state: Callable[..., MinerState]
) -> None:
    temperatures = [
        Reading("temperature_celsius", 40.0 + n, (("board", "hat"), ("sensor", f"s{n}")))
        for n in range(6)
    ]
    readings = (*temperatures, Reading("fan_rpm", 3000.0, (("fan", "0"),)), Reading("power", 15.2))
    base = make_state(readings=readings)
    path = tmp_path / "history.sqlite"
    store = HistoryStore(path)
    start = base.when
    minutes = 26 * 60  # two hours more than are kept
    for minute in range(minutes):
        state = dataclasses.replace(base, when=start + 60 * minute, accepted=minute)
        store.append(sample_of(state))
    assert len(store) == int(RETENTION / 60) + 1
    oldest = store.samples()[0]
    assert oldest.when == start + 60 * (minutes - 1) - RETENTION
    store.close()
    size = files_size(path)
    print(f"history for 24 h at 1/min with {len(sample_of(base).series)} series: {size} bytes")
    assert size < 5 * MB


def test_series_appear_only_when_known(make_state: Callable[..., MinerState]) -> None:
    bare = make_state(devices=(), power_w=None)
    assert {"asicTemp", "power", "jPerTh"}.isdisjoint(sample_of(bare).series)
    full = sample_of(
        make_state(readings=(Reading("temperature_celsius", 51.0, (("sensor", "vr"),)),))
    )
    assert full.series["asicTemp"] == 55.5
    assert full.series["power"] == 45.5
    assert full.series["jPerTh"] == 45.5 / 1.5
    assert full.series["temperature_celsius{sensor=vr}"] == 51.0
    assert full.series["pool"] == 0.0


def test_the_file_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    first = HistoryStore(path)
    first.append(Sample(1000.0, {"hashrate": 1.5}))
    first.append(Sample(1060.0, {"hashrate": 2.5, "asicTemp": 50.0}))
    first.close()
    again = HistoryStore(path)
    assert again.series() == {
        "hashrate": [(1000.0, 1.5), (1060.0, 2.5)],
        "asicTemp": [(1060.0, 50.0)],
    }
    again.close()


async def test_history_outlives_a_server_restart_and_feeds_statistics(
    tmp_path: Path, make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    clock = [make_state().when]

    def provider() -> MinerState:
        return make_state(when=clock[0], elapsed=60.0)

    path = tmp_path / "state" / "history.sqlite"
    options: dict[str, Any] = {"history_path": path, "history_interval": 60.0}
    first = RestServer(ListenAddress("127.0.0.1", 0), provider, control, **options)
    async with first:
        await asyncio.sleep(0.2)  # the first sample is taken at start
    clock[0] += 120.0  # the daemon comes back two minutes later
    second = RestServer(ListenAddress("127.0.0.1", 0), provider, control, **options)
    async with second:
        await asyncio.sleep(0.2)
        history = await get_json(second.port, "/api/history")
        statistics = await get_json(second.port, "/api/system/statistics")
    points = history["series"]["hashrate"]
    assert [when for when, _ in points] == [clock[0] - 120.0, clock[0]]
    assert all(value == 1500.0 for _, value in points)
    assert "asicTemp" in history["series"]
    assert statistics["labels"] == [*STAT_LABELS, "timestamp"]
    # ms since this start (60 s ago): the sample from before the restart is negative
    assert [row[-1] for row in statistics["statistics"]] == [-60_000, 60_000]
    assert statistics["statistics"][0][STAT_LABELS.index("power")] == 45.5
