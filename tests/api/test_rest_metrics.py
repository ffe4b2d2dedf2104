"""``/metrics`` over a real socket, parsed by prometheus_client's own text parser, equals
the REST and cgminer figures for the same frozen snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from stratum_client.api.cgminer_server import CgminerServer
from stratum_client.api.model import MinerState, Reading
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress

if TYPE_CHECKING:
    from conftest import RecordingControl

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
ANY = ListenAddress("127.0.0.1", 0)


async def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: miner\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def cgminer(port: int, command: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps({"command": command}).encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return json.loads(raw.rstrip(b"\x00"))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_equal_rest_and_cgminer_for_one_snapshot(
    state: MinerState, control: RecordingControl
) -> None:
    frozen = dataclasses.replace(
        state,
        readings=(
            Reading("temperature_celsius", 48.5, (("board", "hat"), ("sensor", "asic"))),
            Reading("fan_rpm", 3100.0, (("fan", "0"),), "Fan speed."),
        ),
    )
    rest = RestServer(ANY, lambda: frozen, control)
    api = CgminerServer(ANY, LOOPBACK, lambda: frozen, control)
    async with rest, api:
        status, headers, body = await get(rest.port, "/metrics")
        _, _, info_body = await get(rest.port, "/api/system/info")
        summary = (await cgminer(api.port, "summary"))["SUMMARY"][0]
        pools = (await cgminer(api.port, "pools"))["POOLS"]
        devs = (await cgminer(api.port, "devs"))["DEVS"]
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    got = samples(body.decode())
    info = json.loads(info_body)

    assert got[("stratum_client_shares_total", (("result", "accepted"),))] == summary["Accepted"]
    assert got[("stratum_client_shares_total", (("result", "accepted"),))] == info["sharesAccepted"]
    assert got[("stratum_client_shares_total", (("result", "rejected"),))] == summary["Rejected"]
    assert got[("stratum_client_shares_total", (("result", "rejected"),))] == info["sharesRejected"]
    assert got[("stratum_client_shares_total", (("result", "stale"),))] == summary["Stale"]
    assert got[("stratum_client_hardware_errors_total", ())] == summary["Hardware Errors"]
    rate = got[("stratum_client_hashrate_hashes_per_second", (("window", "1m"),))]
    assert rate / 1e9 == info["hashRate"]
    assert got[("stratum_client_power_watts", ())] == info["power"]
    for reason in info["sharesRejectedReasons"]:
        key = ("stratum_client_shares_rejected_total", (("reason", reason["message"]),))
        assert got[key] == reason["count"]
    for pool, configured in zip(pools, frozen.pools, strict=True):
        named = (("pool", str(pool["POOL"])),)
        labels = (*named, ("result", "accepted"), ("url", configured.url))
        assert got[("stratum_client_pool_shares_total", labels)] == pool["Accepted"]
        active = (*named, ("state", "active"), ("url", configured.url))
        assert got[("stratum_client_pool_state", active)] == (1.0 if pool["Stratum Active"] else 0)
    for dev, device in zip(devs, frozen.devices, strict=True):
        labels = (("chain", device.name), ("model", device.model), ("result", "accepted"))
        assert got[("stratum_client_chain_shares_total", labels)] == dev["Accepted"]
    alive = [(k, v) for k, v in got.items() if k[0] == "stratum_client_chip_alive"]
    assert sorted(v for _, v in alive) == [0.0, 1.0, 1.0]  # gamma.2's chip 1 is silent
    # board readings appear by themselves, with their labels
    hat = (("board", "hat"), ("sensor", "asic"))
    assert got[("stratum_client_temperature_celsius", hat)] == 48.5
    assert got[("stratum_client_fan_rpm", (("fan", "0"),))] == 3100.0
