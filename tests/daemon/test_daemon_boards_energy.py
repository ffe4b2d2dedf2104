"""A board's measured power reaches the energy governor and ledger: the ledger counts the
board chain's energy as measured, and the governor's decision says so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from live_helpers import WAIT, wait_until

from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.energy import EnergyService, StepRecord
from stratum_client.energy.ledger import Ledger
from tests.daemon.conftest import PoolFactory
from tests.daemon.test_daemon_boards import board_config, emulated_gamma

if TYPE_CHECKING:
    from conftest import MosquittoBroker

ENERGY = """
[telemetry.mqtt]
enabled = false
port = {port}
[energy]
mode = "always"
[energy.ledger]
path = "ledger.sqlite"
interval = 1
"""


async def test_the_ledger_counts_a_boards_measured_power(
    tmp_path: Path, pool_factory: PoolFactory, broker: MosquittoBroker
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        text = board_config(emulator, pool, tmp_path) + ENERGY.format(port=broker.port)
        config = parse_config(text, base_dir=tmp_path)
        steps: list[StepRecord] = []
        energy = EnergyService(config, on_step=steps.append)
        daemon = Daemon(config, handle_signals=False, services=[energy])
        task = asyncio.create_task(daemon.run())

        def measured() -> bool:
            return any(s.decision.per_device["gamma"].measured for s in steps)

        await wait_until("a measured step", measured, WAIT)
        await wait_until("three ledger intervals", lambda: _rows(energy) >= 3, WAIT)
        watts = emulator.board.tps.vout * emulator.board.tps.iout_a
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
    assert energy.ledger_path is not None
    with Ledger.open_readonly(energy.ledger_path) as reader:
        totals = reader.totals(device="gamma")
        rows = reader.rows(device="gamma")
    assert totals.measured_kwh > 0
    # Only the power-up, before the board's first reading, is modelled.
    assert rows[-1].measured_kwh > 0
    assert rows[-1].measured_kwh == pytest.approx(rows[-1].energy_kwh)
    last = next(s for s in reversed(steps) if s.decision.per_device["gamma"].measured)
    assert last.decision.per_device["gamma"].power_w == pytest.approx(watts, rel=0.25)


def _rows(energy: EnergyService) -> int:
    if energy.ledger_path is None or not energy.ledger_path.is_file():
        return 0
    with Ledger.open_readonly(energy.ledger_path) as reader:
        return len(reader.rows(device="gamma"))
