"""``python -m stratum_client.boards`` as a process against an emulated Gamma: SIGTERM ends
it with VOUT off and reset asserted in the emulator's registers; bad input is one clear
error line and exit status 2, never a traceback."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from board_rig import DIFFICULTY_SCALE, open_rig

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "stratum_client.boards", "--log-level", "warning", *extra]


async def test_sigterm_leaves_vout_off_and_reset_asserted(tmp_path: Path) -> None:
    rig = await open_rig(tmp_path)
    try:
        process = await asyncio.create_subprocess_exec(
            *command("--board", "bitaxe-gamma", "--port", f"control={rig.emulator.control_path}",
                     "--port", f"data={rig.emulator.data_path}",
                     "--board-option", "timing_scale=0.1", "--driver-option", "ramp_step_delay=0",
                     "--difficulty-scale", str(DIFFICULTY_SCALE)),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        async with asyncio.timeout(DEADLINE):
            while True:  # mining, with the chip driver's init seen on the data port
                status = json.loads(await process.stdout.readline())
                data = [e for e in rig.emulator.board.traffic if e.port == "data" and e.ok]
                if status["state"] == "mining" and len(data) > 10 and rig.emulator.chain.mhz > 500:
                    break
        assert rig.emulator.board.chain_powered
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(DEADLINE):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()[-2000:]
        board = rig.emulator.board
        assert board.tps.vout == 0.0
        assert board.reset_released is False
    finally:
        await rig.emulator.stop()


async def run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command(*args), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(DEADLINE):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_unknown_board_is_one_clear_error() -> None:
    code, stderr = await run("--board", "bitaxe-delta", "--port", "control=/x", "--port", "data=/y")
    assert code == 2
    assert "no board named 'bitaxe-delta'" in stderr
    assert "Traceback" not in stderr


async def test_a_port_that_is_not_bitaxe_raw_is_one_clear_error(tmp_path: Path) -> None:
    rig = await open_rig(tmp_path)
    try:
        data = rig.emulator.data_path  # a chip UART, silent: not a control port
        code, stderr = await run("--board", "bitaxe-gamma", "--port", f"control={data}",
                                 "--port", f"data={data}")  # fmt: skip
    finally:
        await rig.emulator.stop()
    assert code == 2
    assert f"{data} is not a bitaxe-raw control port" in stderr
    assert "Traceback" not in stderr


async def test_voltage_outside_the_limits_is_one_clear_error() -> None:
    code, stderr = await run("--board", "bitaxe-gamma", "--port", "control=/x", "--port",
                             "data=/y", "--voltage", "1.6")  # fmt: skip
    assert code == 2
    assert "core_voltage: 1.6 is outside bitaxe-gamma's limits 1..1.3" in stderr


async def test_list_names_the_built_in_boards() -> None:
    process = await asyncio.create_subprocess_exec(
        *command("--list"), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    names = {line.split(" = ")[0] for line in out.decode().splitlines()}
    assert {"bitaxe-gamma", "bitaxe-supra", "bitaxe-ultra", "piaxe", "serial"} <= names
