"""The energy governor wired into a real daemon: emulated chips, a local pool, mosquitto.

Every test mines for real (an emulated BM1366 chain on a pty, shares validated by the
local pool) while a test "sensor" publishes the site's surplus on the real broker. The
truths asserted against are independent of the governor: the pool's own list of
accepted shares, the chain runner's count of work units sent, what the test published.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiomqtt
import pytest
from live_helpers import wait_until
from structlog.testing import capture_logs

from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.chain import ChainState, ChainStatus
from stratum_client.daemon.energy import HOLD_REASON, EnergyService, StepRecord, energy_services
from stratum_client.energy.ledger import Ledger
from stratum_client.logsetup import reset_logging
from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import serve_chains


class Broker(Protocol):
    """The ``mosquitto_broker`` fixture's broker (restartable on the same port)."""

    port: int

    def start(self) -> None: ...

    def stop(self) -> None: ...


SCALE = 2.0**-22
POOL_DIFFICULTY = 2.0**-14
TOPIC = "site/surplus"
BASE = "sc-test"
WAIT = 45.0


@dataclass
class Sensor:
    """Publishes the surplus every ``period`` real seconds, riding out broker outages."""

    port: int
    value: bytes | None = None
    period: float = 0.25
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    clock: Callable[[], float] | None = None

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, timeout=5) as client:
                    while True:
                        if self.value is not None:
                            await client.publish(TOPIC, self.value)
                            if self.clock is not None:
                                self.sent.append((self.clock(), self.value))
                        await asyncio.sleep(self.period)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)


@dataclass
class Rig:
    daemon: Daemon
    service: EnergyService
    pool: LocalPool
    sensor: Sensor
    ledger: Path
    steps: list[StepRecord]

    def chain(self) -> ChainStatus:
        return self.daemon.snapshot().chains[0]

    def mining(self) -> bool:
        return self.chain().state is ChainState.RUNNING

    def paused_by_energy(self) -> bool:
        chain = self.chain()
        return chain.state is ChainState.PAUSED and HOLD_REASON in chain.paused_by


def _config(tmp_path: Path, pool_url: str, link: str, port: int, energy: str) -> str:
    return f"""
[daemon]
state_dir = "{tmp_path}"
[[pools]]
name = "p"
url = "{pool_url}"
user = "demo.w"
[[devices]]
name = "a"
driver = "bm1366"
port = "{link}"
chips = 2
difficulty_scale = {SCALE}
options = {{ramp_step_delay = 0}}
[telemetry.mqtt]
host = "127.0.0.1"
port = {port}
base_topic = "{BASE}"
{energy}
"""


SURPLUS_ENERGY = f"""
[energy]
mode = "surplus"
control_interval = 0.5
min_dwell = 1
[energy.surplus]
net_of_miner = false
margin_w = 1
[energy.signals.surplus]
topic = "{TOPIC}"
max_age = 2
[energy.ledger]
path = "ledger.sqlite"
interval = 1
"""


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    broker: Broker,
    energy: str = SURPLUS_ENERGY,
    *,
    time_scale: float = 1.0,
    sensor_period: float = 0.25,
) -> AsyncIterator[Rig]:
    async with LocalPool(difficulty=POOL_DIFFICULTY, job_interval=0.5) as pool:
        link = str(tmp_path / "asic0")
        async with serve_chains([EmulatedChain("bm1366", 2, difficulty_scale=SCALE)], [link]):
            config = parse_config(_config(tmp_path, pool.url, link, broker.port, energy))
            steps: list[StepRecord] = []
            service = EnergyService(
                config, time_scale=time_scale, reconnect_max=1.0, on_step=steps.append
            )
            daemon = Daemon(config, handle_signals=False, services=[service])
            sensor = Sensor(broker.port, period=sensor_period, clock=service.clock)
            run = asyncio.create_task(daemon.run())
            feeding = asyncio.create_task(sensor.run())
            try:
                yield Rig(daemon, service, pool, sensor, tmp_path / "ledger.sqlite", steps)
            finally:
                feeding.cancel()
                daemon.request_stop()
                assert await run == 0


async def _retained_state(port: int) -> dict[str, object]:
    """The governor state as a dashboard connecting now would see it."""
    async with aiomqtt.Client("127.0.0.1", port, timeout=5) as client:
        await client.subscribe(f"{BASE}/energy/state")
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                state = json.loads(message.payload)
                assert isinstance(state, dict)
                return state
    raise AssertionError("no retained energy state")


async def _state_where(port: int, predicate: Callable[[dict[str, object]], bool]) -> dict:  # type: ignore[type-arg]
    """Poll the retained state until ``predicate`` holds (publication is asynchronous)."""
    async with asyncio.timeout(WAIT):
        while True:
            state = await _retained_state(port)
            if predicate(state):
                return state
            await asyncio.sleep(0.2)


def _device(state: dict[str, object]) -> dict[str, object]:
    devices = state["devices"]
    assert isinstance(devices, dict)
    device = devices["a"]
    assert isinstance(device, dict)
    return device


def test_no_service_without_energy_table(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, "stratum+tcp://127.0.0.1:1", "/dev/null", 1, ""))
    assert energy_services(config) == []
    enabled = parse_config(_config(tmp_path, "stratum+tcp://127.0.0.1:1", "/x", 1, SURPLUS_ENERGY))
    assert [type(s) for s in energy_services(enabled)] == [EnergyService]


async def test_surplus_mines_then_pauses_cleanly_and_ledger_counts_shares(
    tmp_path: Path, mosquitto_broker: Broker
) -> None:
    async with rig(tmp_path, mosquitto_broker) as r:
        # Before any signal: the fail-safe holds the chain, and no work goes out.
        await wait_until("held before signals", r.paused_by_energy)
        await wait_until("jobs offered", lambda: r.daemon.snapshot().dispatch.job_count >= 2)
        assert r.chain().work_sent == 0

        r.sensor.value = b"100"
        await wait_until("mining on surplus", lambda: len(r.pool.accepted) >= 3)
        assert r.mining()
        assert r.chain().frequency_mhz == pytest.approx(485, abs=1)

        r.sensor.value = b"5"  # below the ~13 W minimum of two BM1366 at half speed
        await wait_until("paused on low surplus", r.paused_by_energy)
        last = r.service.last
        assert last is not None
        assert not last.decision.per_device["a"].run
        assert "surplus" in last.decision.per_device["a"].reason

        # While paused, new pool jobs arrive but no work is sent to the chips. Counted at
        # the pool: the daemon's job table is capped (8), so its size can stop growing.
        # The third job is announced half a second after the second reached the daemon.
        sent = r.chain().work_sent
        issued = r.pool.jobs_issued
        await wait_until("three new jobs", lambda: r.pool.jobs_issued >= issued + 3)
        assert r.chain().work_sent == sent
        assert r.paused_by_energy()

        # Shares found before the pause are all answered; none is lost.
        def settled() -> bool:
            d = r.daemon.snapshot().dispatch
            return d.pending == 0 and d.in_flight == 0

        await wait_until("shares answered", settled)
        dispatch = r.daemon.snapshot().dispatch
        assert dispatch.lost == 0
        assert dispatch.found_shares == dispatch.accepted + dispatch.rejected
        assert dispatch.accepted == len(r.pool.accepted)

        state = await _state_where(mosquitto_broker.port, lambda s: _device(s)["run"] is False)
        assert _device(state)["state"] == "paused"
        assert _device(state)["paused_by"] == [HOLD_REASON]

        # Intervals are stored as they close, not only at shutdown.
        def stored() -> bool:
            with Ledger.open_readonly(r.ledger) as ledger:
                return ledger.totals().run_s > 0

        await wait_until("ledger rows while running", stored)

    final = r.daemon.snapshot().dispatch
    device = final.devices[0].total.shares
    with Ledger.open_readonly(r.ledger) as ledger:
        rows = ledger.rows()
        totals = ledger.totals()
    assert rows, "no ledger rows"
    assert totals.shares == device.accepted == len(r.pool.accepted) == sum(x.shares for x in rows)
    assert totals.share_difficulty == pytest.approx(device.accepted_difficulty)
    assert totals.run_s > 0
    assert totals.energy_kwh > 0
    assert totals.grid_kwh <= 0.01 * totals.energy_kwh


async def test_garbage_and_stale_signals_engage_the_fail_safe(
    tmp_path: Path, mosquitto_broker: Broker
) -> None:
    reset_logging()
    with capture_logs() as logs:
        await _garbage_then_stale(tmp_path, mosquitto_broker)
    rejected = [e for e in logs if e["event"] == "energy signal rejected"]
    assert any("sensor state is 'unavailable'" in e["problem"] for e in rejected)
    assert any("payload is a JSON object" in e["problem"] for e in rejected)
    engaged = [e for e in logs if e["event"] == "energy fail-safe engaged"]
    assert any("unavailable" in e["reason"] for e in engaged)
    assert any("stale" in e["reason"] for e in engaged)
    assert all(e["log_level"] == "warning" for e in rejected + engaged)


async def _garbage_then_stale(tmp_path: Path, mosquitto_broker: Broker) -> None:
    async with rig(tmp_path, mosquitto_broker) as r:
        r.sensor.value = b"100"
        await wait_until("mining", r.mining)

        r.sensor.value = b"unavailable"
        await wait_until("paused on garbage", r.paused_by_energy)
        last = r.service.last
        assert last is not None
        assert last.decision.fail_safe_engaged
        assert "sensor state is 'unavailable'" in (last.decision.fail_safe_reason or "")
        state = await _state_where(mosquitto_broker.port, lambda s: s["fail_safe_engaged"] is True)
        signals = state["signals"]
        assert isinstance(signals, dict)
        assert signals["surplus"]["state"] == "error"
        assert _device(state)["paused_by"] == [HOLD_REASON]

        r.sensor.value = b'{"not": "a number"}'  # garbage of another kind, same outcome

        def json_problem() -> bool:
            problem = r.service.board.problem("surplus", r.service.clock()) or ""
            return "payload is a JSON object" in problem

        await wait_until("JSON payload rejected", json_problem)
        assert r.paused_by_energy()
        r.sensor.value = b"100"
        await wait_until("mining again", r.mining)

        r.sensor.value = None  # the sensor goes quiet: stale after max_age (2 s)
        await wait_until("paused on stale", r.paused_by_energy)
        last = r.service.last
        assert last is not None
        assert "stale" in (last.decision.fail_safe_reason or "")
        assert r.daemon.snapshot().chains[0].failures == 0


async def test_broker_down_engages_fail_safe_and_recovers(
    tmp_path: Path, mosquitto_broker: Broker
) -> None:
    async with rig(tmp_path, mosquitto_broker) as r:
        r.sensor.value = b"100"
        await wait_until("mining", r.mining)

        await asyncio.to_thread(mosquitto_broker.stop)
        await wait_until("paused with the broker down", r.paused_by_energy)
        last = r.service.last
        assert last is not None
        reason = last.decision.fail_safe_reason or ""
        assert "stale" in reason
        assert "broker" in reason
        assert r.service.state()["broker"] != "connected"

        await asyncio.to_thread(mosquitto_broker.start)
        await wait_until("mining after the broker returned", r.mining)
        state = await _state_where(mosquitto_broker.port, lambda s: s["fail_safe_engaged"] is False)
        assert _device(state)["state"] == "running"
        assert r.service.subscriber.connections >= 2


# --------------------------------------------------------------------------- replay

REPLAY_SCALE = 20.0
"""Governor seconds per real second: 20 simulated minutes in one real minute."""
DWELL = 30.0
REPLAY_ENERGY = f"""
[energy]
mode = "surplus"
control_interval = 1
min_dwell = {DWELL}
[energy.surplus]
net_of_miner = false
margin_w = 1
[energy.signals.surplus]
topic = "{TOPIC}"
max_age = 20
[energy.ledger]
path = "ledger.sqlite"
interval = 60
"""
SPAN = 480.0
"""Simulated seconds of the compressed day: dawn, clouds, noon, dusk."""


def _solar(t: float) -> float:
    """A compressed day in watts: a sine arch up to 40 W with two passing clouds."""
    if not 0 <= t <= SPAN:
        return 0.0
    watts = 40.0 * math.sin(math.pi * t / SPAN)
    for start, length, depth in ((150.0, 40.0, 0.85), (300.0, 25.0, 0.5)):
        if start <= t < start + length:
            watts *= 1.0 - depth
    return round(watts, 2)


async def test_compressed_day_through_the_daemon(tmp_path: Path, mosquitto_broker: Broker) -> None:
    async with rig(
        tmp_path, mosquitto_broker, REPLAY_ENERGY, time_scale=REPLAY_SCALE, sensor_period=0.1
    ) as r:
        start = r.service.clock()
        r.sensor.value = b"0"

        async def follow_the_sun() -> None:
            while (t := r.service.clock() - start) <= SPAN + 30:
                r.sensor.value = str(_solar(t)).encode()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(follow_the_sun(), timeout=SPAN / REPLAY_SCALE * 4 + 30)
        await wait_until("paused after dusk", r.paused_by_energy)

    steps = [s for s in r.steps if s.now >= start]
    published = [(t, float(v)) for t, v in r.sensor.sent if t >= start]
    decisions = [s.decision.per_device["a"] for s in steps]
    assert any(d.run and d.frequency_mhz == 485 for d in decisions), "never at full speed"
    assert any(d.run and (d.frequency_mhz or 485) < 485 for d in decisions), "never scaled"
    assert any(s.decision.surplus_w and not d.run for s, d in zip(steps, decisions, strict=True))

    # Modelled power never exceeds the surplus the governor knew of at that step, and
    # never exceeds every value published within the last reaction window (2 real s).
    window = 2.0 * REPLAY_SCALE
    for step in steps:
        if step.decision.surplus_w is not None:
            assert step.power_w <= step.decision.surplus_w + 1e-6
        recent = [v for t, v in published if step.now - window <= t <= step.now]
        earlier = [v for t, v in published if t < step.now - window]
        allowed = max(recent + earlier[-1:], default=0.0)
        assert step.power_w <= allowed + 1e-6, (step.now - start, step.power_w, allowed)

    # Starts respect the dwell: never within DWELL of the previous start or stop.
    last_start = last_stop = -math.inf
    was_running = False
    for step, d in zip(steps, decisions, strict=True):
        if d.run and not was_running:
            assert step.now - last_start >= DWELL - 1e-6
            assert step.now - last_stop >= DWELL - 1e-6
            last_start = step.now
        elif was_running and not d.run:
            last_stop = step.now
        was_running = d.run

    final = r.daemon.snapshot().dispatch
    with Ledger.open_readonly(r.ledger) as ledger:
        rows = ledger.rows()
        totals = ledger.totals()
    assert len(rows) >= SPAN / 60
    assert totals.energy_kwh > 0
    assert totals.grid_kwh <= 0.01 * totals.energy_kwh
    assert totals.energy_kwh == pytest.approx(sum(x.energy_kwh for x in rows))
    assert totals.surplus_kwh + totals.grid_kwh == pytest.approx(totals.energy_kwh)
    assert totals.shares == final.accepted == len(r.pool.accepted)
    # The energy the ledger billed equals the governor's decided power held between steps.
    held = sum(a.power_w * (b.now - a.now) for a, b in itertools.pairwise(steps)) / 3.6e6
    assert totals.energy_kwh == pytest.approx(held, rel=0.1)


# --------------------------------------------------------------------------- kill -9

DAEMON_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from stratum_client_bm13xx.emulator.chain import EmulatedChain
    from stratum_client_bm13xx.emulator.server import serve_chains
    from stratum_client.config import parse_config
    from stratum_client.daemon.app import Daemon
    from stratum_client.daemon.energy import EnergyService
    from stratum_client.testing.pool import LocalPool

    async def main(directory, template):
        async with LocalPool(difficulty=float(sys.argv[3]), job_interval=0.5) as pool:
            link = directory + "/asic0"
            chain = EmulatedChain("bm1366", 2, difficulty_scale=float(sys.argv[4]))
            async with serve_chains([chain], [link]):
                config = parse_config(template.replace("POOL_URL", pool.url))
                report = lambda step: print("STEP", repr(step.wall), flush=True)
                service = EnergyService(config, on_step=report)
                await Daemon(config, handle_signals=False, services=[service]).run()

    asyncio.run(main(sys.argv[1], open(sys.argv[2]).read()))
    """
)
ALWAYS_ENERGY = """
[energy]
mode = "always"
[energy.ledger]
path = "ledger.sqlite"
interval = 1
"""


def test_kill_9_mid_run_loses_at_most_the_open_interval(
    tmp_path: Path, mosquitto_broker: Broker
) -> None:
    link = str(tmp_path / "asic0")
    template = tmp_path / "config.toml"
    template.write_text(_config(tmp_path, "POOL_URL", link, mosquitto_broker.port, ALWAYS_ENERGY))
    path = tmp_path / "ledger.sqlite"
    numbers = (repr(POOL_DIFFICULTY), repr(SCALE))
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON_SCRIPT, str(tmp_path), str(template), *numbers],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert daemon.stdout is not None
    last_step, seen, deadline = -math.inf, 0, time.monotonic() + 60
    try:
        while seen < 3:
            line = daemon.stdout.readline()
            assert line, "the daemon died on its own"
            assert time.monotonic() < deadline, "the ledger did not fill in time"
            if line.startswith("STEP "):
                last_step = float(line.split()[1])
                if path.is_file():
                    with Ledger.open_readonly(path) as reader:
                        seen = sum(1 for x in reader.rows() if x.shares and x.run_s)
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        rest, _ = daemon.communicate()
    steps = [float(x.split()[1]) for x in rest.splitlines() if x.startswith("STEP ")]
    last_step = max([last_step, *steps])
    assert daemon.returncode == -signal.SIGKILL

    with Ledger.open_readonly(path) as reader:
        assert reader.integrity_check() == "ok"
        rows = reader.rows(device="a")
        totals = reader.totals()
    assert sum(x.shares for x in rows) == totals.shares > 0
    for before, after in itertools.pairwise(rows):
        assert after.start == before.end  # nothing missing in between
    # A step is reported only after the intervals it closed are committed, so every
    # interval that ended by the last reported step is there: only the open one is lost.
    assert rows[-1].end >= math.floor(last_step)
