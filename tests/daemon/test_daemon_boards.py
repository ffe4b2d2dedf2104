"""The daemon running a [[devices]] board: power-up before the chain, shares through the
board's chain, and every way out leaves the emulated board with VOUT off and reset held.

The truth is the emulated board's own registers (TPS546 OPERATION, the reset GPIO) and
the local pool's list of validated submits, never the daemon's view of itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from live_helpers import WAIT, wait_until

from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.testing.pool import LocalPool
from tests.daemon.conftest import FAST_POLICY, SCALE, PoolFactory, _toml_value
from tests.daemon.test_daemon_process import daemon_process


@contextlib.asynccontextmanager
async def emulated_gamma(directory: Path) -> AsyncIterator[BoardEmulator]:
    emulator = BoardEmulator("bitaxe-gamma", directory / "control", directory / "data",
                             difficulty_scale=SCALE)  # fmt: skip
    async with emulator:
        yield emulator


def board_config(
    emulator: BoardEmulator, pool: LocalPool, state_dir: Path, safety: str = ""
) -> str:
    policy = "\n".join(f"{k} = {_toml_value(v)}" for k, v in FAST_POLICY.items())
    return f"""
[daemon]
state_dir = "{state_dir}"
[pool_policy]
{policy}
[[pools]]
name = "local"
url = "{pool.url}"
user = "demo.w"
[[devices]]
name = "gamma"
board = "bitaxe-gamma"
ports = {{ control = "{emulator.control_path}", data = "{emulator.data_path}" }}
difficulty_scale = {SCALE}
options = {{ ramp_step_delay = 0, enumerate_quiet = 0.1 }}
board_options = {{ timing_scale = 0.2 }}
[devices.safety]
poll_interval_s = 0.2
{safety}
"""


def powered(emulator: BoardEmulator) -> bool:
    return emulator.board.tps.output_on and emulator.board.reset_released


def switched_off(emulator: BoardEmulator) -> bool:
    """Both halves of the safe state landed: VOUT off and reset asserted (two writes)."""
    return not emulator.board.tps.output_on and not emulator.board.reset_released


def assert_off(emulator: BoardEmulator) -> None:
    assert not emulator.board.tps.output_on, "VOUT still on"
    assert not emulator.board.reset_released, "reset released"


async def test_board_entry_mines_through_the_board_and_powers_down_on_stop(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        assert not powered(emulator)
        config = parse_config(board_config(emulator, pool, tmp_path))
        daemon = Daemon(config, handle_signals=False)
        task = asyncio.create_task(daemon.run())
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 3, WAIT)
        assert powered(emulator)
        assert emulator.chain.reported, "the board's chain found the nonces"
        status = daemon.boards["gamma"].status
        assert status is not None
        assert status.as_dict()["state"] == "mining"
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        assert_off(emulator)
    assert pool.rejected == []


async def test_an_exception_in_the_daemon_leaves_the_board_off(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        config = parse_config(board_config(emulator, pool, tmp_path))
        explode = asyncio.Event()

        def status_line(_line: str) -> None:
            if explode.is_set():
                raise RuntimeError("injected failure in the status loop")

        daemon = Daemon(config, handle_signals=False, emit_status=status_line)
        task = asyncio.create_task(daemon.run())
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 1, WAIT)
        assert powered(emulator)
        explode.set()
        assert await asyncio.wait_for(task, WAIT) == 1
        assert_off(emulator)


async def test_sigterm_to_a_daemon_process_leaves_the_board_off(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        path = tmp_path / "stratum-client.toml"
        path.write_text(board_config(emulator, pool, tmp_path))
        async with daemon_process(path) as daemon:
            await daemon.wait_until("shares accepted", lambda: len(pool.accepted) >= 2)
            assert powered(emulator)
            daemon.process.send_signal(signal.SIGTERM)
            assert await daemon.exit_status() == 0
        emulator.update()
        assert_off(emulator)
        assert daemon.logged("board off")


async def test_fan_stall_under_the_daemon_safe_state_no_share_lost_and_recovery(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        safety = "stall_s = 2.0\ndwell_s = 1.0"
        config = parse_config(board_config(emulator, pool, tmp_path, safety))
        daemon = Daemon(config, handle_signals=False)
        task = asyncio.create_task(daemon.run())
        board = daemon.boards["gamma"]

        def state() -> str | None:
            return None if board.status is None else str(board.status.safety.state)

        await wait_until("shares accepted", lambda: len(pool.accepted) >= 3, WAIT)
        await wait_until("fan spinning", lambda: emulator.board.emc.rpm > 0, WAIT)
        clock = emulator.clock
        emulator.faults.fan_stalled = True
        stalled_at = clock.now()
        await wait_until("VOUT off", lambda: not emulator.board.tps.output_on, WAIT)
        off_after = clock.now() - stalled_at
        await wait_until("reset asserted", lambda: not emulator.board.reset_released, WAIT)
        assert state() == "safe"
        assert daemon.runner("gamma").held
        # The shares found before the stall are all answered by the pool, none lost.
        await wait_until("submits answered", lambda: daemon.snapshot().dispatch.in_flight == 0)
        before = daemon.snapshot().dispatch
        assert before.lost == 0
        assert before.accepted == len(pool.accepted)
        accepted_at_stall = len(pool.accepted)

        emulator.faults.fan_stalled = False
        await wait_until("recovered", lambda: state() == "mining" and powered(emulator), WAIT)
        await wait_until("mining again", lambda: len(pool.accepted) > accepted_at_stall + 1, WAIT)
        assert not daemon.runner("gamma").held
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        after = daemon.snapshot().dispatch
        assert after.lost == 0
        assert after.accepted == len(pool.accepted)
        assert_off(emulator)
    assert off_after < 5.0, f"safe state {off_after:.2f} s after the tach read 0"
    assert pool.rejected == []


async def test_a_board_that_cannot_open_is_retried_and_stops_nothing(
    tmp_path: Path, pool_factory: PoolFactory
) -> None:
    pool = await pool_factory()
    async with emulated_gamma(tmp_path) as emulator:
        config = parse_config(board_config(emulator, pool, tmp_path))
        emulator.vanish_control()  # unplugged before the daemon starts
        daemon = Daemon(config, handle_signals=False)
        task = asyncio.create_task(daemon.run())
        board = daemon.boards["gamma"]
        await wait_until("two failed attempts", lambda: board.failures >= 2, WAIT)
        assert not task.done()
        assert "control" in board.last_error
        assert not powered(emulator)
        emulator.restore_control()
        await wait_until("shares accepted", lambda: len(pool.accepted) >= 1, WAIT)
        daemon.request_stop()
        assert await asyncio.wait_for(task, WAIT) == 0
        assert_off(emulator)
