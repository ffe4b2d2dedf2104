"""Shared fakes for the API tests: a realistic miner snapshot and a recording control.

``RecordingControl`` fakes our own ``MinerControl`` interface (not a third-party API): it
records every call so tests can assert that a privileged action did, or did not, happen.
"""

from __future__ import annotations

import asyncio
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
    MiningState,
)
from stratum_client.errors import InputError
from stratum_client.pool.types import PoolStatus
from stratum_client.secrets import Secret

GH = 1e9
NOW = 1_750_000_000.0


def make_state(**changes: Any) -> MinerState:
    """Two chains (a BM1366 with a sensor, a 2-chip BM1370 without) and two pools."""
    pools = (
        PoolStatus(
            0,
            "main",
            "stratum+tcp://pool.example.org:3333",
            "bc1qminer.rig1",
            "active",
            0,
            2048.0,
            120,
            3,
            1,
            2,
            1,
            "",
            0x1FFFE000,
        ),
        PoolStatus(
            1,
            "backup",
            "stratum+tls://backup.example.net:4333",
            "bc1qminer.rig1",
            "standby",
            1,
            None,
            0,
            0,
            0,
            0,
            0,
            "",
            0,
        ),
    )
    ultra = DeviceState(
        name="ultra",
        model="BM1366",
        chips=1,
        frequency_mhz=485.0,
        status=DeviceStatus.ALIVE,
        hashrate=Hashrate(450 * GH, 440 * GH, 430 * GH, 420 * GH),
        accepted=70,
        rejected=2,
        hw_errors=3,
        difficulty_accepted=70 * 2048.0,
        difficulty_rejected=2 * 2048.0,
        diff1_work=1_000_000.0,
        last_share_at=NOW - 5,
        last_share_difficulty=2048.0,
        temperature_c=55.5,
        voltage_v=1.2,
        power_w=12.0,
        elapsed=3500.0,
        chip_counters=(ChipState(0, nonces=9000, hw_errors=3, duplicates=1, last_nonce_age=0.4),),
    )
    gamma = DeviceState(
        name="gamma.2",
        model="BM1370",
        chips=2,
        frequency_mhz=525.0,
        status=DeviceStatus.SICK,
        hashrate=Hashrate(1050 * GH, 1040 * GH, 1030 * GH, 1020 * GH),
        accepted=50,
        rejected=1,
        hw_errors=0,
        diff1_work=2_000_000.0,
        elapsed=3400.0,
        chip_counters=(
            ChipState(0, nonces=12000, last_nonce_age=0.2),
            ChipState(1, nonces=10, last_nonce_age=600.0, alive=False),
        ),
    )
    state = MinerState(
        version="0.1.0",
        hostname="rig1",
        when=NOW,
        elapsed=3600.0,
        hashrate=Hashrate(1500 * GH, 1480 * GH, 1460 * GH, 1440 * GH),
        accepted=120,
        rejected=3,
        stale=1,
        hw_errors=3,
        best_share=1_234_567.0,
        difficulty_accepted=120 * 2048.0,
        difficulty_rejected=3 * 2048.0,
        difficulty_stale=2048.0,
        found_blocks=0,
        pools=pools,
        devices=(ultra, gamma),
        power_w=45.5,
        mining=MiningState.RUNNING,
        rejected_reasons=(("Job not found", 2), ("Low difficulty", 1)),
        last_share_at=NOW - 5,
    )
    return dataclasses.replace(state, **changes)


class RecordingControl:
    """Records every ``MinerControl`` call; ``fail`` makes the next calls raise it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.fail: Exception | None = None
        self.called = asyncio.Event()

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        self.called.set()
        if self.fail is not None:
            raise self.fail

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    async def pause(self, reason: str) -> None:
        self._record("pause", reason)

    async def resume(self) -> None:
        self._record("resume")

    async def set_frequency(self, device: str, mhz: float) -> float:
        self._record("set_frequency", device, mhz)
        if device not in ("ultra", "gamma.2"):
            raise InputError("device", f"no device named {device!r}")
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
    """Frozen, so one instance serves every test (and every hypothesis example)."""
    return make_state()


@pytest.fixture(name="make_state", scope="session")
def make_state_fixture() -> Callable[..., MinerState]:
    """The snapshot factory, for tests that vary it (``make_state(devices=())``)."""
    return make_state


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()
