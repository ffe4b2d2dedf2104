"""A live daemon on an emulated Bitaxe Gamma whose data port (the ASIC UART) vanishes on
its own, the control port staying: the board is switched off (VOUT off, reset asserted
in the emulator's registers) and, when the port returns, comes back through the full
power-up sequence before the chip driver talks to the chips again, and mines.

The truth is the emulator's registers and its captured control/data traffic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from live_helpers import WAIT, wait_until

from stratum_client.boards.emulator.board import TrafficEntry
from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from tests.daemon.conftest import PoolFactory
from tests.daemon.test_daemon_boards import (
    assert_off,
    board_config,
    emulated_gamma,
    powered,
    switched_off,
)

CYCLES = 3


def first(traffic: list[TrafficEntry], prefix: str, *, port: str = "control") -> int:
    return next(e.seq for e in traffic if e.port == port and e.what.startswith(prefix) and e.ok)


def power_up_order(traffic: list[TrafficEntry], opening: str) -> list[int]:
    """Where each step of the power-up stands in ``traffic``, ``opening`` first."""
    steps = ["I2C WRITE 24 02 1F", "I2C WRITE 24 21", "I2C WRITE 24 01 80", "GPIO PIN0 01"]
    # regulator configured, VOUT_COMMAND, output on, reset released; only then chip init
    return [first(traffic, step) for step in (opening, *steps)] + [
        first(traffic, "chip bytes", port="data")
    ]


async def test_a_data_port_that_vanishes_alone_brings_the_board_back_through_a_full_power_up(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        config = parse_config(board_config(emulator, pool, tmp_path))
        daemon = Daemon(config, handle_signals=False)
        task = asyncio.create_task(daemon.run())
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 2, WAIT)
        for cycle in range(CYCLES):
            emulator.chain_server.unplug()
            await wait_until("board off", lambda: switched_off(emulator), WAIT)
            assert_off(emulator)
            assert emulator.board.tps.vout == 0.0
            seen = len(emulator.board.traffic)
            accepted = len(pool.accepted)
            await emulator.chain_server.plug()
            await wait_until("mining again", lambda n=accepted: len(pool.accepted) > n, WAIT)
            assert powered(emulator), cycle
            traffic = list(emulator.board.traffic)[seen:]
            order = power_up_order(traffic, "GPIO PIN0 00")  # reset held first
            assert order == sorted(order), cycle
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        assert_off(emulator)
        assert daemon.boards["gamma"].failures == 0  # an unplug is not a board failure
        assert daemon.snapshot().dispatch.lost == 0
    assert pool.rejected == []


async def test_both_ports_pulled_at_once_come_back_through_a_full_power_up_and_no_failure(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    """A pulled USB cable takes the control port with the data port: the safe state cannot
    reach the board, which is said so, not counted as a failure, and not retried on a
    doubling pause; once both ports are back the board powers up from scratch."""
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        # A slow safety poll: the data port's own watch (every 0.1 s) sees the unplug first,
        # so the session ends while the control port is already gone.
        text = board_config(emulator, pool, tmp_path).replace(
            "poll_interval_s = 0.2", "poll_interval_s = 30.0"
        )
        daemon = Daemon(parse_config(text), handle_signals=False)
        task = asyncio.create_task(daemon.run())
        board = daemon.boards["gamma"]

        def state() -> str | None:
            return None if board.status is None else str(board.status.safety.state)

        await wait_until("shares accepted", lambda: len(pool.accepted) >= 2, WAIT)
        for cycle in range(CYCLES):
            emulator.vanish_control()
            emulator.chain_server.unplug()
            await wait_until("board reported off", lambda: state() == "safe", WAIT)
            assert board.status is not None
            assert not board.status.safe_state_ok, "nothing could reach the board"
            assert "data port" in board.status.safety.reason
            seen = emulator.board.traffic[-1].seq
            accepted = len(pool.accepted)
            await emulator.chain_server.plug()
            emulator.restore_control()
            await wait_until("mining again", lambda n=accepted: len(pool.accepted) > n, WAIT)
            assert state() == "mining", cycle
            traffic = [e for e in emulator.board.traffic if e.seq > seen]
            order = power_up_order(traffic, "I2C WRITE 24 01 00")  # open: output off first
            assert order == sorted(order), cycle
        assert board.failures == 0, board.last_error  # an unplug is not a board failure
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        assert_off(emulator)
        assert daemon.snapshot().dispatch.lost == 0
    assert pool.rejected == []
