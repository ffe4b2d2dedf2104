"""A recorded-style day replayed through the governor on an accelerated clock.

The world: a synthetic but realistic solar day (sunrise 06:00, noon peak, sunset 20:00,
cloud dips with soft edges), a noisy house load with appliance spikes, sampled every
10 s; a grid-intensity curve updated every 5 min. A grid meter that reports *net* power
(its reading includes the miners) publishes every 10 s, 3 s after the world changes,
as JSON in kW with import positive, exactly as many inverters do. Two emulated chains
(1×BM1370, 1×BM1366) draw their modelled power and find nonces at their nominal rate.

The clock is just a loop variable stepped by the control interval: a whole day takes a
few seconds and is fully deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stratum_client.energy.config import parse_energy
from stratum_client.energy.governor import Governor
from stratum_client.energy.ledger import IntervalAccumulator, Ledger, LedgerRow
from stratum_client.energy.power import DevicePower
from stratum_client.energy.signals import SignalBoard

DAY = 86_400
SAMPLE = 10
METER_PHASE = 3
CARBON_EVERY = 300
T0 = 1_718_928_000.0  # 2024-06-21T00:00:00Z
TICKET = 256.0
POOL_DIFFICULTY = 4096.0
DEVICES = (("gamma", "BM1370", 525.0), ("ultra", "BM1366", 485.0))


def _clouds(rng: random.Random) -> list[tuple[float, float, float]]:
    """(start, duration, depth) of passing clouds between 08:00 and 18:30."""
    return [
        (rng.uniform(8 * 3600, 18.5 * 3600), rng.uniform(60, 1500), rng.uniform(0.3, 0.85))
        for _ in range(30)
    ]


def _cloud_factor(t: float, clouds: list[tuple[float, float, float]]) -> float:
    factor = 1.0
    for start, duration, depth in clouds:
        edge = 45.0
        if start - edge < t < start + duration + edge:
            into = min(t - (start - edge), start + duration + edge - t) / edge
            factor *= 1.0 - depth * min(1.0, into)
    return factor


def _appliances(t: float) -> float:
    loads = [(7.5 * 3600, 180, 2000.0), (12 * 3600, 2400, 1500.0), (14 * 3600, 5400, 450.0)]
    return sum(watts for start, length, watts in loads if start <= t < start + length)


def world(seed: int = 7) -> tuple[list[float], list[float]]:
    """Surplus (W, before mining) per 10 s sample and intensity (g/kWh) per 5 min."""
    rng = random.Random(seed)
    clouds = _clouds(rng)
    surplus = []
    for n in range(DAY // SAMPLE):
        t = n * SAMPLE
        day_fraction = (t - 6 * 3600) / (14 * 3600)
        pv = 420.0 * math.sin(math.pi * day_fraction) ** 1.5 if 0 < day_fraction < 1 else 0.0
        load = 180.0 + rng.gauss(0.0, 8.0) + _appliances(t)
        surplus.append(pv * _cloud_factor(t, clouds) - load)
    intensity = [
        300.0
        - 130.0 * math.sin(2 * math.pi * (n * CARBON_EVERY - 7 * 3600) / DAY)
        + rng.gauss(0.0, 6.0)
        for n in range(DAY // CARBON_EVERY)
    ]
    return surplus, intensity


ENERGY = {
    "mode": "surplus",
    "min_dwell": 300,
    "surplus": {"margin_w": 4.0, "reserve_w": 4.0, "net_of_miner": True},
    "carbon": {"max_intensity": 200.0, "margin": 20.0},
    "signals": {
        "surplus": {
            "topic": "inverter/meter",
            "path": "$.grid.power_kw",
            "scale": 1000.0,
            "invert": True,
            "max_age": 30,
        },
        "carbon_intensity": {"topic": "grid/carbon", "path": "carbonIntensity", "max_age": 900},
    },
}


@dataclass
class Replay:
    rows: list[LedgerRow]
    truth_rows: list[LedgerRow]
    ledger_path: Path
    energy_j: float = 0.0
    known_overshoot_w: float = 0.0
    true_overshoot_w: float = 0.0
    longest_true_overshoot_s: int = 0
    toggles: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    carbon_refusals: int = 0
    fail_safe_steps: int = 0


@dataclass
class Chips:
    """Emulated chains: modelled draw, nominal hash rate, shares by deterministic carry."""

    power: DevicePower
    nonces: float = 0.0
    found: int = 0

    def hash_for(self, seconds: float, mhz: float | None) -> tuple[int, int]:
        """(new nonces, new accepted shares) over ``seconds`` at ``mhz``."""
        if mhz is None:
            return 0, 0
        hashes = mhz * 1e6 * self.power.chip.small_cores * self.power.chips * seconds
        self.nonces += hashes / (TICKET * 2**32)
        new = int(self.nonces)
        self.nonces -= new
        shares = (self.found + new) // 16 - self.found // 16  # 1 in 4096/256 nonces
        self.found += new
        return new, shares


def replay(modes: list[str], directory: Path) -> Replay:
    energy = parse_energy({**ENERGY, "mode": modes}, device_names=[d[0] for d in DEVICES])
    powers = [energy.device_power(name, model, 1, mhz) for name, model, mhz in DEVICES]
    governor = Governor(energy.policy, powers, energy.power_signals)
    board = SignalBoard(energy.signals)
    chips = {p.name: Chips(p) for p in powers}
    ledger = Ledger(directory / "replay.sqlite")
    accumulator = IntervalAccumulator(interval=60.0, mode=energy.policy.label)
    truth = IntervalAccumulator(interval=60.0, mode="truth")
    surplus, intensity = world()
    result = Replay([], [], ledger.path, toggles={p.name: [] for p in powers})
    drawing = 0.0
    over_for = 0
    for second in range(DAY):
        true_surplus = surplus[second // SAMPLE]
        if second % SAMPLE == METER_PHASE:
            net_kw = (drawing - true_surplus) / 1000.0
            board.feed(
                "inverter/meter", f'{{"grid": {{"power_kw": {net_kw:.5f}}}}}'.encode(), second
            )
        if second % CARBON_EVERY == 0:
            payload = f'{{"carbonIntensity": {intensity[second // CARBON_EVERY]:.0f}}}'
            board.feed("grid/carbon", payload.encode(), second)
        decision = governor.step(float(second), board)
        for name in decision.changed:
            history, running = result.toggles[name], decision.per_device[name].run
            if not history or history[-1][1] != running:
                history.append((second, running))
        drawing = sum(d.power_w for d in decision.per_device.values())
        if decision.surplus_w is not None and any(d.run for d in decision.per_device.values()):
            result.known_overshoot_w = max(result.known_overshoot_w, drawing - decision.surplus_w)
        over = drawing - max(true_surplus, 0.0) if drawing > 0 else 0.0
        over_for = over_for + 1 if over > 1e-9 else 0
        result.true_overshoot_w = max(result.true_overshoot_w, over)
        result.longest_true_overshoot_s = max(result.longest_true_overshoot_s, over_for)
        result.fail_safe_steps += decision.fail_safe_engaged
        result.carbon_refusals += any(
            "carbon" in d.reason for d in decision.per_device.values() if not d.run
        )
        result.energy_j += drawing
        for name, device in decision.per_device.items():
            nonces, shares = chips[name].hash_for(1.0, device.frequency_mhz)
            accumulator.nonce(name, TICKET, nonces)
            for _ in range(shares):
                accumulator.share(name, POOL_DIFFICULTY)
        wall = T0 + second
        samples = decision.power_samples()
        rows = accumulator.sample(wall, samples, decision.surplus_w, decision.carbon_intensity)
        ledger.append_many(rows)
        result.rows += rows
        result.truth_rows += truth.sample(wall, samples, true_surplus, decision.carbon_intensity)
    closing = accumulator.close(T0 + DAY)
    ledger.append_many(closing)
    result.rows += closing
    result.truth_rows += truth.close(T0 + DAY)
    ledger.close()
    return result


@pytest.fixture(scope="module")
def surplus_day(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    return replay(["surplus"], tmp_path_factory.mktemp("surplus"))


@pytest.fixture(scope="module")
def clean_day(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    return replay(["surplus", "carbon"], tmp_path_factory.mktemp("clean"))


def _grid_share(rows: list[LedgerRow]) -> float:
    return sum(r.grid_kwh for r in rows) / sum(r.energy_kwh for r in rows)


def _cycles(toggles: list[tuple[float, bool]]) -> Iterator[tuple[float, float, float]]:
    """(previous start, previous stop, next start) for every restart."""
    last_start = last_stop = -math.inf
    for at, running in toggles:
        if running:
            yield last_start, last_stop, at
            last_start = at
        else:
            last_stop = at


def test_the_day_is_realistic(surplus_day: Replay) -> None:
    surplus, intensity = world()
    assert max(surplus) > 150, "a sunny noon"
    assert min(surplus) < -1000, "a kettle, an oven"
    assert min(intensity) > 150
    assert max(intensity) < 450
    kwh = surplus_day.energy_j / 3.6e6
    assert 0.1 < kwh < 0.5, f"two small miners, a summer day: {kwh:.3f} kWh"


def test_mining_power_never_exceeds_the_surplus_by_more_than_one_control_step(
    surplus_day: Replay,
) -> None:
    assert surplus_day.known_overshoot_w <= 1e-9
    # Against the true surplus, only the meter's reporting lag (3 s) plus one step remain.
    assert surplus_day.longest_true_overshoot_s <= METER_PHASE + 1


@pytest.mark.parametrize("day", ["surplus_day", "clean_day"])
def test_grid_sourced_energy_is_at_most_one_percent(
    day: str, request: pytest.FixtureRequest
) -> None:
    result: Replay = request.getfixturevalue(day)
    assert _grid_share(result.rows) <= 0.01
    assert _grid_share(result.truth_rows) <= 0.01


@pytest.mark.parametrize("day", ["surplus_day", "clean_day"])
def test_chips_never_toggle_more_than_the_dwell_allows(
    day: str, request: pytest.FixtureRequest
) -> None:
    result: Replay = request.getfixturevalue(day)
    for name, toggles in result.toggles.items():
        restarts = list(_cycles(toggles[1:]))
        assert restarts, f"{name} should have restarted at least once in a day with clouds"
        for last_start, last_stop, start in restarts:
            assert start - last_stop >= 300, (name, last_stop, start)
            assert start - last_start >= 300, (name, last_start, start)


@pytest.mark.parametrize("day", ["surplus_day", "clean_day"])
def test_ledger_totals_match_the_sum_of_its_intervals(
    day: str, request: pytest.FixtureRequest
) -> None:
    result: Replay = request.getfixturevalue(day)
    with Ledger.open_readonly(result.ledger_path) as ledger:
        stored = ledger.rows()
        totals = ledger.totals()
        by_device = ledger.totals_by_device()
    assert stored == result.rows
    assert totals.intervals == len(stored) == 2 * DAY // 60
    for attribute in ("energy_kwh", "surplus_kwh", "grid_kwh", "carbon_g", "hashes", "run_s"):
        assert getattr(totals, attribute) == pytest.approx(
            sum(getattr(r, attribute) for r in stored)
        )
        assert getattr(totals, attribute) == pytest.approx(
            sum(getattr(t, attribute) for t in by_device.values())
        )
    assert totals.shares == sum(r.shares for r in stored)
    assert totals.energy_kwh == pytest.approx(result.energy_j / 3.6e6)
    assert 10 < (totals.j_per_th or 0) < 30, "between the two chips' modelled efficiencies"


def test_carbon_gate_adds_refusals_without_breaking_anything(
    surplus_day: Replay, clean_day: Replay
) -> None:
    assert clean_day.carbon_refusals > 0
    assert sum(r.energy_kwh for r in clean_day.rows) < sum(r.energy_kwh for r in surplus_day.rows)
    assert surplus_day.fail_safe_steps == METER_PHASE, "only until the first meter reading"
    assert clean_day.known_overshoot_w <= 1e-9


def test_replay_figures(surplus_day: Replay, clean_day: Replay) -> None:
    """The day in numbers (shown with ``pytest -s`` or ``-rP``)."""
    for label, day in (("surplus", surplus_day), ("surplus+carbon", clean_day)):
        cycles = {
            name: sum(1 for _, running in t[1:] if running) for name, t in day.toggles.items()
        }
        print(
            f"[{label}] mined {day.energy_j / 3600:.1f} Wh; grid share: ledger "
            f"{100 * _grid_share(day.rows):.3f} %, true {100 * _grid_share(day.truth_rows):.3f} %; "
            f"overshoot vs known surplus {day.known_overshoot_w:.2f} W, vs true surplus "
            f"{day.true_overshoot_w:.1f} W for at most {day.longest_true_overshoot_s} s; "
            f"restarts {cycles}"
        )
        assert all(count <= DAY / 300 for count in cycles.values())
