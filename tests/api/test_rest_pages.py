"""The dashboard's own routes over a real socket: the page, its files, its JSON."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stratum_client.api.model import MinerState
from stratum_client.api.rest import NOT_AXEOS
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress
from stratum_client.energy.ledger import Ledger, LedgerRow

if TYPE_CHECKING:
    from conftest import RecordingControl


async def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: miner\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:]), body


async def test_page_files_and_summary(state: MinerState, control: RecordingControl) -> None:
    async with RestServer(ListenAddress("127.0.0.1", 0), lambda: state, control) as server:
        page = await get(server.port, "/")
        script = await get(server.port, "/static/app.js")
        chart = await get(server.port, "/static/chart.js")
        missing = await get(server.port, "/static/../rest.py")
        plain_ws = await get(server.port, "/api/ws")
        summary = await get(server.port, "/api/dashboard")
    status, headers, body = page
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    text = body.decode()
    assert " ".join(NOT_AXEOS.split()) in " ".join(text.split())  # pyasic's detection
    assert "/static/app.js" in text
    assert "http://" not in text.replace("http://www.w3.org", "")  # nothing from the internet
    assert script[0] == chart[0] == 200
    assert script[1]["Content-Type"].startswith("text/javascript")
    assert b"/api/ws" in script[2]
    assert missing[0] == 404
    assert plain_ws[0] == 400
    assert b"websocket" in plain_ws[2]
    data = json.loads(summary[2])
    assert data["hashrate"]["1m"] == 1500.0
    assert data["hashrate"]["10m"] is None  # no history file here
    assert data["shares"]["reasons"] == [
        {"reason": "Job not found", "count": 2},
        {"reason": "Low difficulty", "count": 1},
    ]
    assert [p["state"] for p in data["pools"]] == ["active", "standby"]
    gamma = data["chains"][1]
    assert (gamma["chips"], gamma["chipsAlive"]) == (2, 1)
    assert [c["alive"] for c in gamma["chipList"]] == [True, False]
    assert data["energy"] is None


async def test_energy_comes_from_the_ledger(
    tmp_path: Path, state: MinerState, control: RecordingControl
) -> None:
    path = tmp_path / "energy-ledger.sqlite"
    with Ledger(path) as ledger:
        end = time.time()
        for device, grid in (("ultra", 0.002), ("gamma.2", 0.001)):
            ledger.append(LedgerRow(end - 60, end, device, 0.003 + grid, 0.003, grid,
                                    grid * 400.0, 0.0, 0.0, 60.0, 5, 10.0, 2.0e14,
                                    "follow", "surplus"))  # fmt: skip
        expected = ledger.totals()
    server = RestServer(ListenAddress("127.0.0.1", 0), lambda: state, control, ledger_path=path)
    async with server:
        summary = json.loads((await get(server.port, "/api/dashboard"))[2])
        metrics = (await get(server.port, "/metrics"))[2].decode()
    energy = summary["energy"]
    assert energy["surplusKwh"] == pytest.approx(expected.surplus_kwh)
    assert energy["gridKwh"] == pytest.approx(0.003)
    assert energy["cleanPct"] == pytest.approx(100 * 0.006 / 0.009)
    assert energy["jPerTh"] == pytest.approx(0.009 * 3.6e6 / 400.0)
    assert energy["gPerTh"] == pytest.approx(1.2 / 400.0)
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    by_source = {s.labels["source"]: s.value for s in families["stratum_client_energy_kwh"].samples}
    assert by_source == pytest.approx({"surplus": 0.006, "grid": 0.003})
