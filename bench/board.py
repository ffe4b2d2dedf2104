"""Board layer costs for each built-in Bitaxe, against an emulated board in another process.

Run ``python bench/board.py`` (``--quick`` for fewer repeats). Prints readable lines, then
one JSON object on the last line. The board emulator runs as its own process
(``python -m stratum_client.boards.emulator``), so this process's CPU time is the board
code and the safety loop alone, and every request crosses a real pty.

* safety CPU: process CPU seconds per safety-loop poll (readings of every sensor, the
  policy, any fan write), median of back-to-back polls; at 1 s polling that many seconds
  per second is the fraction of a core (goal: under 0.5 %);
* control round trip: seconds per bitaxe-raw request over the pty, p50 and p99 of every
  request of the run;
* critical to VOUT off: from the moment a poll's readings (with the ASIC temperature
  forced to read 80 °C) are in hand to the acknowledgement of the rail's switch-off step
  (TPS546 OPERATION off; POWER_EN high on the DS4432U boards; the lowest trim written on
  the Ultra 204, which cannot switch its rail off) (goal: under 100 ms), median and worst
  of several trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from stratum_client.boards.base import BoardReadings, BoardSpec, Reading
from stratum_client.boards.builtin.bitaxe_bridge import BitaxeRawBoard
from stratum_client.boards.registry import load_board
from stratum_client.boards.safety import BoardState
from stratum_client.boards.safety_task import SafetyTask
from stratum_client.logsetup import configure_logging

BOARDS = ("bitaxe-gamma", "bitaxe-supra", "bitaxe-ultra", "bitaxe-ultra-201", "bitaxe-ultra-204",
          "bitaxe-supra-400")  # fmt: skip


@contextmanager
def emulator(board: str, directory: Path) -> Iterator[dict[str, str]]:
    command = [sys.executable, "-m", "stratum_client.boards.emulator", "--board", board,
               "--dir", str(directory), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ports: dict[str, str] = json.loads(process.stdout.readline())
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def poll_cost(task: SafetyTask, polls: int) -> list[float]:
    costs = []
    for _ in range(polls):
        started = time.process_time()
        await task.poll_once()
        costs.append(time.process_time() - started)
    return costs


async def critical_to_off(board: BitaxeRawBoard, trips: int) -> list[float]:
    """Seconds from critical readings in hand to the rail's switch-off acknowledged, per trip."""
    samples: list[float] = []
    real_readings, real_off = board.readings, board._rail_off
    marks: dict[str, float] = {}

    async def hot_readings() -> BoardReadings:
        readings = replace(await real_readings(), asic_temp_c=Reading.of(80.0), settling=False)
        marks["reading"] = time.perf_counter()
        return readings

    async def timed_off() -> None:
        await real_off()
        marks.setdefault("off", time.perf_counter())

    board.readings = hot_readings  # type: ignore[method-assign]
    board._rail_off = timed_off  # type: ignore[method-assign]
    try:
        for _ in range(trips):
            await board.power_up()
            task = SafetyTask(board)
            marks.clear()
            await task.poll_once()
            assert task.policy.state is BoardState.SAFE
            samples.append(marks["off"] - marks["reading"])
    finally:
        board.readings = real_readings  # type: ignore[method-assign]
        board._rail_off = real_off  # type: ignore[method-assign]
    return samples


async def measure(name: str, ports: dict[str, str], polls: int, trips: int) -> dict[str, Any]:
    spec = BoardSpec(board=name, ports=ports, board_options={"timing_scale": 0.01})
    board = load_board(name)(spec)
    assert isinstance(board, BitaxeRawBoard)
    async with board:
        await board.power_up()
        task = SafetyTask(board)
        await poll_cost(task, 3)  # warm-up
        board.client.round_trips.clear()
        costs = await poll_cost(task, polls)
        requests = len(board.client.round_trips) / polls
        trips_s = await critical_to_off(board, trips)
        rtt = list(board.client.round_trips)
    cpu = statistics.median(costs)
    return {
        "safety_cpu_s_per_poll": cpu,
        "safety_cpu_pct_of_core_at_1s": 100.0 * cpu / 1.0,
        "requests_per_poll": requests,
        "control_rtt_ms_p50": 1000 * percentile(rtt, 0.5),
        "control_rtt_ms_p99": 1000 * percentile(rtt, 0.99),
        "critical_to_vout_off_ms_p50": 1000 * statistics.median(trips_s),
        "critical_to_vout_off_ms_max": 1000 * max(trips_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configure_logging("warning", "console", {})
    polls, trips = (20, 5) if args.quick else (200, 20)
    results: dict[str, Any] = {}
    for name in BOARDS:
        with tempfile.TemporaryDirectory() as directory, emulator(name, Path(directory)) as ports:
            figures = asyncio.run(measure(name, ports, polls, trips))
        results[name] = figures
        print(f"{name}: safety loop {figures['safety_cpu_pct_of_core_at_1s']:.3f} % of a core "
              f"at 1 s, {figures['requests_per_poll']:.0f} requests/poll, round trip "
              f"p50 {figures['control_rtt_ms_p50']:.2f} ms p99 {figures['control_rtt_ms_p99']:.2f}"
              f" ms, critical→VOUT off p50 {figures['critical_to_vout_off_ms_p50']:.2f} ms "
              f"max {figures['critical_to_vout_off_ms_max']:.2f} ms")  # fmt: skip
    goals = {"safety_cpu_pct_of_core_at_1s": 0.5, "critical_to_vout_off_ms": 100.0}
    print(json.dumps({"bench": "board", "polls": polls, "trips": trips, "goals": goals,
                      "boards": results}))  # fmt: skip


if __name__ == "__main__":
    main()
