"""The read model's helpers and the control-call wrapper every API relies on."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from stratum_client.api.model import (
    ChipState,
    ControlOutcome,
    DeviceState,
    DeviceStatus,
    Hashrate,
    MinerState,
    call_control,
)
from stratum_client.asic.base import ChipCounters
from stratum_client.daemon.stats import HashrateMeter
from stratum_client.errors import DriverError, InputError


def test_hashrate_from_meter() -> None:
    meter = HashrateMeter(started_at=0.0)
    for second in range(60):
        meter.add(float(second), 1.0)
    rate = Hashrate.from_meter(meter, 60.0)
    assert rate.m1 == pytest.approx(2**32 * 60 / 60, rel=0.1)
    assert rate.average == pytest.approx(2**32)


def test_chip_state_from_counters() -> None:
    counters = ChipCounters(nonces=7, hw_errors=1, duplicates=2, last_nonce_at=100.0)
    assert ChipState.from_counters(3, counters, 102.5) == ChipState(3, 7, 1, 2, 2.5, True)
    assert ChipState.from_counters(0, ChipCounters(), 5.0).last_nonce_age is None


def test_device_and_miner_derived_fields(state: MinerState) -> None:
    assert [device.chips_alive for device in state.devices] == [1, 1]
    assert state.devices[1].nonces == 12010
    bare = DeviceState("x", "BM1370", 4, 500.0, status=DeviceStatus.DEAD)
    assert bare.chips_alive == 0
    assert DeviceState("y", "BM1370", 4, 500.0).chips_alive == 4
    assert state.active_pool is not None
    assert state.active_pool.name == "main"
    assert state.started_at == state.when - 3600


async def test_call_control_turns_every_ending_into_an_outcome() -> None:
    async def reached() -> float:
        return 487.5

    async def refuse() -> None:
        raise InputError("frequency", "900 MHz is above 800")

    async def fail() -> None:
        raise DriverError("serial link lost")

    async def crash() -> None:
        raise KeyError("bug")

    async def hang() -> None:
        await asyncio.sleep(10)

    assert await call_control(reached, within=1, what="x") == ControlOutcome(True, None, 487.5)
    refused = await call_control(refuse, within=1, what="x")
    assert refused == ControlOutcome(False, "frequency: 900 MHz is above 800", rejected=True)
    assert await call_control(fail, within=1, what="x") == ControlOutcome(False, "serial link lost")
    with capture_logs() as logs:
        assert await call_control(crash, within=1, what="x") == ControlOutcome(
            False, "internal error"
        )
    assert logs[0]["event"] == "control call failed"
    timed_out = await call_control(hang, within=0.05, what="x")
    assert timed_out == ControlOutcome(False, "timed out after 0.05 s")
