"""Whether a chip is alive and what state a chain is in, as the APIs report it.

A chip is judged by its own chain's pace: it is alive while its last verified nonce is
within :data:`ALIVE_INTERVALS` expected nonce intervals at the chain's measured 5-minute
rate, or within :data:`ALIVE_FLOOR` seconds, whichever is longer. A chain with any chip
not alive is ``sick``; one that is retrying or stopped is ``dead``.
"""

from __future__ import annotations

from typing import Final

from stratum_client.api.model import ChipState, DeviceStatus
from stratum_client.asic.base import ChipCounters
from stratum_client.daemon.chain import ChainState
from stratum_client.daemon.dispatcher import DeviceSnapshot
from stratum_client.daemon.stats import HASHES_PER_DIFF1

__all__ = [
    "ALIVE_FLOOR",
    "ALIVE_INTERVALS",
    "alive_window",
    "chip_alive",
    "chip_states",
    "device_status",
]

ALIVE_INTERVALS: Final = 20.0
"""A chip is alive if its last nonce is within this many expected nonce intervals…"""
ALIVE_FLOOR: Final = 60.0
"""…or within this many seconds, whichever is longer (slow chains, start-up)."""


def chip_states(
    counters: list[ChipCounters], state: ChainState, stats: DeviceSnapshot | None, now: float
) -> tuple[ChipState, ...]:
    """Each chip's health; only a running chain's chips can be found not alive."""
    window = alive_window(stats, len(counters))
    judged = state is ChainState.RUNNING
    return tuple(
        ChipState.from_counters(index, chip, now, alive=not judged or chip_alive(chip, now, window))
        for index, chip in enumerate(counters)
    )


def device_status(state: ChainState, chips: tuple[ChipState, ...]) -> DeviceStatus:
    if state is ChainState.STARTING:
        return DeviceStatus.INITIALISING
    if state in (ChainState.RETRYING, ChainState.STOPPED):
        return DeviceStatus.DEAD
    if chips and not all(chip.alive for chip in chips):
        return DeviceStatus.SICK
    return DeviceStatus.ALIVE


def alive_window(stats: DeviceSnapshot | None, chips: int) -> float:
    """How long a chip may stay silent: 20 expected nonce intervals at the chain's
    measured 5-minute rate (so an emulated or slow chain is judged by itself)."""
    if stats is None or chips == 0:
        return ALIVE_FLOOR
    rate = stats.total.hashrate.m5
    per_nonce = stats.ticket_difficulty * HASHES_PER_DIFF1
    if rate <= 0 or per_nonce <= 0:
        return ALIVE_FLOOR
    interval = per_nonce * chips / rate
    return max(ALIVE_FLOOR, ALIVE_INTERVALS * interval)


def chip_alive(chip: ChipCounters, now: float, window: float) -> bool:
    return chip.last_nonce_at is not None and now - chip.last_nonce_at <= window
