"""A third-party driver that is not BM13xx, written only against the driver base class.

The ``fakechip`` plug-in (``tests/plugins/fakechip``, its own distribution with an entry
point in ``stratum_client.drivers``) is found by the registry, mines through a real daemon
against a LocalPool, and its chips' cores, power and hashrate show in the REST and cgminer
APIs. The truths: the pool's own list of validated shares, the fake chip's count of what
it reported, and the figures the plug-in's class publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.asic.base import AsicDriver, DeviceSpec, DriverState
from stratum_client.asic.ptys import HotplugPty, PtyPair
from stratum_client.asic.registry import available_drivers, chip_facts, detect_chain, load_driver
from stratum_client.config import ListenAddress, parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.telemetry import CgminerService, RestService, telemetry_services
from stratum_client.energy.power import CHIP_POWER
from stratum_client.testing.pool import LocalPool
from stratum_client.work import JobBuilder, Work, parse_notify
from stratum_client.work.target import difficulty_to_target

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's"),
    pytest.mark.usefixtures("fakechip_plugin"),
]

SCALE = 2.0**-32
"""Ticket 256 × SCALE = 2**-24: one hash in 256 is reported."""
POOL_DIFFICULTY = 2.0**-20
"""One hash in 4096 is a share: a couple per job of 8192 nonces."""
VECTORS = Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json"


def _fake_chain(pair: PtyPair, chips: int) -> Any:
    # Importable only once the fixture has 'installed' the plug-in (mypy checks its source
    # as tests.plugins.fakechip.sc_fakechip).
    chip = importlib.import_module("sc_fakechip.chip")
    return chip.FakeChain(pair, chips, scan=8192)


def test_the_registry_finds_the_plugin_and_its_facts() -> None:
    assert available_drivers()["fakechip"] == "sc_fakechip.driver:FakeChipDriver"
    cls = load_driver("fakechip")
    assert issubclass(cls, AsicDriver)
    assert cls.__module__ == "sc_fakechip.driver"
    assert cls.model == "FAKE1"  # taken from its facts
    facts = chip_facts("fake1")
    assert facts is not None
    assert facts is cls.facts
    assert (facts.cores, facts.small_cores) == (8, 64)
    power = CHIP_POWER["FAKE1"]
    assert power.watts(facts.default_mhz) == pytest.approx(2.5)
    assert "FAKE1" in set(CHIP_POWER)


async def test_detect_asks_the_plugin(tmp_path: Path) -> None:
    with PtyPair.open(tmp_path / "fake0") as pair:
        chain = _fake_chain(pair, 3)
        try:
            async with asyncio.timeout(WAIT):
                result = await detect_chain(pair.path, timeout=0.5)
        finally:
            chain.close()
    assert result.models == {"FAKE1": 3}


def _work() -> Work:
    """Work for a real job (slush, 2023) from the test vectors."""
    jobs = json.loads(VECTORS.read_text())["jobs"]
    vector = next(j for j in jobs if j["name"] == "slush-2023-diff683")
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(str(vector["extranonce1"])),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=0,
    )
    return JobBuilder(job).build(bytes(4))


async def test_the_plugin_driver_mines_on_the_base_class(tmp_path: Path) -> None:
    spec = DeviceSpec(str(tmp_path / "fake0"), chips=2, difficulty_scale=SCALE)
    with PtyPair.open(spec.port) as pair:
        chain = _fake_chain(pair, 2)
        try:
            driver = load_driver("fakechip")(spec)
            async with asyncio.timeout(WAIT), driver:
                work = _work()
                await driver.send_work(work)
                found = [await driver.next_nonce() for _ in range(8)]
        finally:
            chain.close()
    target = difficulty_to_target(spec.effective_ticket_difficulty)
    assert all(int.from_bytes(f.hash, "little") <= target for f in found)
    assert {f.work for f in found} == {work}
    assert sum(c.nonces for c in driver.counters) >= 8
    assert {f.chip for f in found} <= {0, 1}


async def test_the_base_class_recovers_the_plugin_from_an_unplug(tmp_path: Path) -> None:
    """Recovery is the base's: the plug-in has no reconnect code, yet comes back."""
    spec = DeviceSpec(str(tmp_path / "fake0"), chips=1, difficulty_scale=SCALE)
    work = _work()
    with HotplugPty(spec.port) as hotplug:
        chain = _fake_chain(hotplug.pair, 1)
        driver = load_driver("fakechip")(spec)
        try:
            async with asyncio.timeout(WAIT), driver:
                await driver.send_work(work)
                await driver.next_nonce()
                chain.close()
                hotplug.unplug()
                await wait_until("link lost", lambda: driver.state is DriverState.RECONNECTING)
                await driver.send_work(work)  # kept while the link is down, sent on return
                before = driver.counters[0].nonces
                chain = _fake_chain(hotplug.plug(), 1)
                await wait_until("chain back", lambda: driver.state is DriverState.RUNNING)
                await wait_until("new nonces", lambda: driver.counters[0].nonces > before)
        finally:
            chain.close()
    assert driver.reconnects == 1
    assert chain.jobs == 1  # the new chip got the kept work, with no send_work after the return
    assert chain.reported >= driver.counters[0].nonces - before > 0


async def _get(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return data


async def rest_json(port: int, path: str) -> Any:
    raw = await _get(port, f"GET {path} HTTP/1.1\r\nHost: miner\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", head
    return json.loads(body)


async def cgminer_json(port: int, command: str) -> Any:
    raw = await _get(port, json.dumps({"command": command}).encode())
    return json.loads(raw.rstrip(b"\x00"))


def _config(pool: LocalPool, port: str, state_dir: Path) -> Any:
    text = (
        f'[daemon]\nstate_dir = "{state_dir}"\n'
        "[pool_policy]\nconnect_timeout = 2.0\nbackoff_initial = 0.2\nbackoff_max = 0.5\n"
        f'[[pools]]\nname = "local"\nurl = "{pool.url}"\nuser = "demo.w"\n'
        f'[[devices]]\nname = "fake"\ndriver = "fakechip"\nport = "{port}"\nchips = 2\n'
        f"difficulty_scale = {SCALE}\n"
        "[api]\ncgminer_enabled = true\nrest_enabled = true\n"
    )
    config = parse_config(text)
    free = ListenAddress("127.0.0.1", 0)
    api = dataclasses.replace(config.api, cgminer_listen=free, rest_listen=free)
    return dataclasses.replace(config, api=api)


@contextlib.asynccontextmanager
async def mining(tmp_path: Path) -> AsyncIterator[tuple[Daemon, LocalPool, Any, list[Any]]]:
    pool = LocalPool(difficulty=POOL_DIFFICULTY)
    await pool.start()
    with PtyPair.open(tmp_path / "fake0") as pair:
        chain = _fake_chain(pair, 2)
        config = _config(pool, pair.path, tmp_path / "state")
        services = telemetry_services(config)
        daemon = Daemon(config, handle_signals=False, services=services)
        task = asyncio.create_task(daemon.run(), name="daemon-with-plugin")
        try:
            yield daemon, pool, chain, list(services)
            daemon.request_stop()
            async with asyncio.timeout(WAIT):
                assert await task == 0
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            chain.close()
            await pool.stop()


async def test_the_daemon_mines_with_the_plugin_and_the_apis_show_it(tmp_path: Path) -> None:
    async with mining(tmp_path) as (_daemon, pool, chain, services):
        cgminer, rest = services
        assert isinstance(cgminer, CgminerService)
        assert isinstance(rest, RestService)
        await wait_until("APIs listening", lambda: cgminer.ready.is_set() and rest.ready.is_set())
        await wait_until("shares from the fake chips", lambda: len(pool.accepted) >= 6)
        assert rest.server is not None
        assert cgminer.server is not None
        info = await rest_json(rest.server.port, "/api/system/info")
        summary = await cgminer_json(cgminer.server.port, "summary")
        stats = await cgminer_json(cgminer.server.port, "stats")
        devs = await cgminer_json(cgminer.server.port, "devs")
    assert chain.reported > 0
    facts = chip_facts("FAKE1")
    assert facts is not None
    assert info["ASICModel"] == "FAKE1"
    assert info["asicCount"] == 2
    assert info["smallCoreCount"] == facts.small_cores == 64
    assert info["expectedHashrate"] == pytest.approx(facts.expected_ghs(100.0, 2), rel=0.01)
    assert info["power"] == pytest.approx(2 * 2.5, rel=0.01)  # 2 chips at the default point
    assert info["hashRate"] > 0
    assert summary["SUMMARY"][0]["MHS av"] > 0
    assert summary["SUMMARY"][0]["Accepted"] >= 6
    miner = next(row for row in stats["STATS"] if row["ID"] == "MINER0")
    assert miner["Power"] == pytest.approx(5.0, rel=0.01)
    assert miner["Chips"] == 2
    assert [dev["Name"] for dev in devs["DEVS"]] == ["FAKE1"]
    assert devs["DEVS"][0]["MHS av"] > 0
