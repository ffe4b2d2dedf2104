"""Prometheus text at ``/metrics``: a custom collector over the same snapshot REST reads.

Nothing is counted twice: every scrape asks the state provider for one
:class:`~stratum_client.api.model.MinerState` and turns it into metric families, so the
figures equal what ``/api/system/info`` and the cgminer API show for that instant.
Counters (``*_total``) are the daemon's own since-start counts; they reset on restart,
which Prometheus' ``rate()`` handles. Energy comes from the ledger's totals when a ledger
is configured. Board readings (:class:`~stratum_client.api.model.Reading`) appear as
``stratum_client_<metric>`` gauges with their own labels, without code here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from stratum_client.api.model import DeviceState, MinerState, MiningState, Reading

if TYPE_CHECKING:
    from stratum_client.energy.ledger import Totals  # sqlite3 stays out of this core

__all__ = ["POOL_STATES", "MinerCollector", "registry_for"]

PREFIX = "stratum_client"
POOL_STATES = ("active", "connecting", "standby", "failed", "disabled")
CHAIN_STATES = ("Alive", "Sick", "Dead", "Initialising")
EnergySource = Callable[[], "Totals | None"]


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


class MinerCollector(Collector):
    """Builds every family from one snapshot per scrape."""

    def __init__(
        self, state_provider: Callable[[], MinerState], energy: EnergySource | None = None
    ) -> None:
        self.state_provider = state_provider
        self.energy = energy

    def collect(self) -> Iterator[Metric]:
        state = self.state_provider()
        yield from _miner(state)
        yield from _pools(state)
        yield from _chains(state)
        yield from _chips(state)
        yield from _readings(state.readings)
        totals = self.energy() if self.energy is not None else None
        if totals is not None:
            yield from _energy(totals)


def registry_for(collector: MinerCollector) -> CollectorRegistry:
    """A registry holding only ``collector`` (no process metrics: one snapshot, one truth)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def _miner(state: MinerState) -> Iterator[Metric]:
    rate = _gauge("hashrate_hashes_per_second", "Hashrate over a window.", ("window",))
    rates = state.hashrate
    windows = {"1m": rates.m1, "5m": rates.m5, "15m": rates.m15, "average": rates.average}
    for window, value in windows.items():
        rate.add_metric([window], value)
    yield rate
    shares = _counter("shares", "Shares the pools judged, by result.", ("result",))
    shares.add_metric(["accepted"], state.accepted)
    shares.add_metric(["rejected"], state.rejected)
    shares.add_metric(["stale"], state.stale)
    yield shares
    reasons = _counter("shares_rejected", "Rejected shares by the pool's reason.", ("reason",))
    for reason, count in state.rejected_reasons:
        reasons.add_metric([reason], count)
    yield reasons
    difficulty = _counter("share_difficulty", "Sum of share difficulty, by result.", ("result",))
    difficulty.add_metric(["accepted"], state.difficulty_accepted)
    difficulty.add_metric(["rejected"], state.difficulty_rejected)
    yield difficulty
    yield _single(_counter("hardware_errors", "Nonces that failed verification."), state.hw_errors)
    yield _single(_counter("blocks_found", "Shares that met the network target."),
                  state.found_blocks)  # fmt: skip
    yield _single(_gauge("best_share_difficulty", "Best share difficulty this run."),
                  state.best_share)  # fmt: skip
    yield _single(_gauge("uptime_seconds", "Seconds since the daemon started."), state.elapsed)
    yield _single(_gauge("mining_paused", "1 while work is held back from the chips."),
                  1.0 if state.mining is MiningState.PAUSED else 0.0)  # fmt: skip
    if state.power_w is not None:
        yield _single(_gauge("power_watts", "Power drawn by all chains."), state.power_w)


def _single(family: GaugeMetricFamily | CounterMetricFamily, value: float) -> Metric:
    family.add_metric([], value)
    return family


def _pools(state: MinerState) -> Iterator[Metric]:
    labels = ("pool", "url")
    up = _gauge("pool_state", "1 for the pool's current state.", (*labels, "state"))
    shares = _counter("pool_shares", "Shares per pool, by result.", (*labels, "result"))
    difficulty = _gauge("pool_difficulty", "The pool's share difficulty.", labels)
    for pool in state.pools:
        names = [str(pool.index), pool.url]
        for name in POOL_STATES:
            up.add_metric([*names, name], 1.0 if pool.state == name else 0.0)
        for result, count in (("accepted", pool.accepted), ("rejected", pool.rejected),
                              ("stale", pool.stale)):  # fmt: skip
            shares.add_metric([*names, result], count)
        difficulty.add_metric(names, pool.difficulty or 0.0)
    yield from (up, shares, difficulty)


def _chains(state: MinerState) -> Iterator[Metric]:
    chain = ("chain", "model")
    status = _gauge("chain_state", "1 for the chain's current state.", (*chain, "state"))
    rate = _gauge("chain_hashrate_hashes_per_second", "Chain hashrate, 1 minute.", chain)
    chips = _gauge("chain_chips", "Chips on the chain, by health.", (*chain, "health"))
    frequency = _gauge("chain_frequency_mhz", "Chain clock frequency.", chain)
    shares = _counter("chain_shares", "Shares per chain, by result.", (*chain, "result"))
    temperature = _gauge("chain_temperature_celsius", "Chip temperature.", chain)
    power = _gauge("chain_power_watts", "Chain power (model or measurement).", chain)
    for device in state.devices:
        names = [device.name, device.model]
        for name in CHAIN_STATES:
            status.add_metric([*names, name], 1.0 if device.status == name else 0.0)
        rate.add_metric(names, device.hashrate.m1)
        chips.add_metric([*names, "alive"], device.chips_alive)
        chips.add_metric([*names, "silent"], device.chips - device.chips_alive)
        frequency.add_metric(names, device.frequency_mhz)
        shares.add_metric([*names, "accepted"], device.accepted)
        shares.add_metric([*names, "rejected"], device.rejected)
        _optional(temperature, names, device.temperature_c)
        _optional(power, names, device.power_w)
    yield from (status, rate, chips, frequency, shares, temperature, power)


def _optional(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


def _chips(state: MinerState) -> Iterator[Metric]:
    labels = ("chain", "chip")
    nonces = _counter("chip_nonces", "Valid nonces per chip.", labels)
    errors = _counter("chip_hardware_errors", "Bad nonces per chip.", labels)
    alive = _gauge("chip_alive", "1 while the chip sends nonces as expected.", labels)
    for device in state.devices:
        for chip in device.chip_counters:
            _chip(device, chip.index, (nonces, chip.nonces), (errors, chip.hw_errors),
                  (alive, 1.0 if chip.alive else 0.0))  # fmt: skip
    yield from (nonces, errors, alive)


def _chip(
    device: DeviceState,
    index: int,
    *pairs: tuple[GaugeMetricFamily | CounterMetricFamily, float],
) -> None:
    for family, value in pairs:
        family.add_metric([device.name, str(index)], value)


def _readings(readings: tuple[Reading, ...]) -> Iterator[Metric]:
    """One gauge family per metric name; readings of one name must share label names."""
    families: dict[str, GaugeMetricFamily] = {}
    for reading in readings:
        names = tuple(name for name, _ in reading.labels)
        family = families.get(reading.metric)
        if family is None:
            family = _gauge(reading.metric, reading.help or reading.metric, names)
            families[reading.metric] = family
        family.add_metric([value for _, value in reading.labels], reading.value)
    yield from families.values()


def _energy(totals: Totals) -> Iterator[Metric]:
    energy = _counter("energy_kwh", "Energy drawn, by source (ledger).", ("source",))
    energy.add_metric(["surplus"], totals.surplus_kwh)
    energy.add_metric(["grid"], totals.grid_kwh)
    yield energy
    yield _single(_counter("carbon_grams", "CO2 attributed to grid energy (ledger)."),
                  totals.carbon_g)  # fmt: skip
    yield _single(_counter("ledger_hashes", "Hashes the ledger counted."), totals.hashes)
