"""A miner snapshot and a recording control for the telemetry tests.

The real mosquitto broker (``broker``, ``idle_broker``) comes from tests/conftest.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from stratum_client.api.model import (
    ChipState,
    DeviceState,
    DeviceStatus,
    Hashrate,
    MinerState,
)
from stratum_client.errors import InputError
from stratum_client.pool.types import PoolStatus
from stratum_client.secrets import Secret

GH = 1e9


# --------------------------------------------------------------------------- miner fakes


def make_state(**changes: Any) -> MinerState:
    """One BM1366 chain with a temperature sensor and two pools."""
    device = DeviceState(
        name="ultra",
        model="BM1366",
        chips=1,
        frequency_mhz=485.0,
        status=DeviceStatus.ALIVE,
        hashrate=Hashrate(500 * GH, 490 * GH, 480 * GH, 470 * GH),
        accepted=42,
        hw_errors=1,
        temperature_c=58.25,
        power_w=12.5,
        chip_counters=(ChipState(0, nonces=5000, hw_errors=1, last_nonce_age=0.5),),
    )
    pools = (
        PoolStatus(0, "main", "stratum+tcp://pool.example.org:3333", "bc1q.rig", "active",
                   0, 4096.0, 42, 1, 0, 1, 0, "", 0x1FFFE000),
        PoolStatus(1, "backup", "stratum+tcp://backup.example.org:3333", "bc1q.rig", "standby",
                   1, None, 0, 0, 0, 0, 0, "", 0),
    )  # fmt: skip
    state = MinerState(
        version="0.1.0",
        hostname="rig1",
        when=1_750_000_000.0,
        elapsed=600.0,
        hashrate=Hashrate(500 * GH, 490 * GH, 480 * GH, 470 * GH),
        accepted=42,
        rejected=1,
        stale=0,
        hw_errors=1,
        best_share=65_536.0,
        pools=pools,
        devices=(device,),
        power_w=12.5,
    )
    return dataclasses.replace(state, **changes)


class RecordingControl:
    """Records every ``MinerControl`` call (a fake of our own interface)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.fail: Exception | None = None

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    async def pause(self, reason: str) -> None:
        self._record("pause", reason)

    async def resume(self) -> None:
        self._record("resume")

    async def set_frequency(self, device: str, mhz: float) -> float:
        self._record("set_frequency", device, mhz)
        if mhz > 800:
            raise InputError("frequency", f"{mhz:g} MHz is above this chip's 800 MHz")
        return round(mhz / 6.25) * 6.25

    async def set_fan(self, device: str, percent: float | None) -> float | None:
        self._record("set_fan", device, percent)
        return percent

    async def set_core_voltage(self, device: str, volts: float) -> float:
        self._record("set_core_voltage", device, volts)
        return volts

    async def switch_pool(self, index: int) -> None:
        self._record("switch_pool", index)

    async def enable_pool(self, index: int, enabled: bool) -> None:
        self._record("enable_pool", index, enabled)

    async def add_pool(self, url: str, user: str, password: Secret) -> int:
        self._record("add_pool", url, user, password)
        return 2

    async def restart(self) -> None:
        self._record("restart")

    async def quit(self) -> None:
        self._record("quit")


@pytest.fixture(scope="session")
def state() -> MinerState:
    return make_state()


@pytest.fixture(name="make_state", scope="session")
def make_state_fixture() -> Callable[..., MinerState]:
    return make_state


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()
