"""Unplug and replug a board under the whole daemon: how soon is it mining again?

One emulated Bitaxe Gamma (control port and ASIC UART on ptys) runs under the daemon
(:class:`~stratum_client.daemon.app.Daemon`, its whole task group on this event loop)
against a local pool, in real time, with the board's own power-up waits, the default
safety policy and the chip driver's default options; only the difficulty is scaled
down so that shares come every few tens of milliseconds. Each cycle pulls both ports
(the control port vanishes, the chain server is unplugged), waits until the daemon has
noticed (the chain's driver stopped and the board no longer reported mining), plugs both
back and measures, from that return:

* **board mining**: the board's published state is ``mining`` again;
* **first job**: the chip side took its first job frame;
* **first share**: the pool accepted a share found after the return.

Then it mines on for a few shares, so that the next unplug catches shares on the way.

All three are sampled every 5 ms. Each cycle also checks, in the emulator's captured
traffic after the return, that the full power-up ran in order (reset held, regulator
configured, VOUT_COMMAND, output on, reset released, and only then chip bytes), and at
the end that the daemon's share ledger balances with no share lost or invalid
(``invalid``: shares the pool rejected plus nonces the daemon classed as hardware errors).

Run ``python bench/replug.py`` (``--cycles N``, ``--quick`` for 2). Prints a table, then
one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratum_client.boards.emulator.board import TrafficEntry
from stratum_client.boards.emulator.server import BoardEmulator
from stratum_client.config import parse_config
from stratum_client.daemon.app import Daemon
from stratum_client.daemon.chain import ChainState
from stratum_client.logsetup import configure_logging
from stratum_client.testing.pool import LocalPool

SCALE = 2.0**-29
"""Ticket 256 × 2⁻²⁹ = 2⁻²¹: a nonce every ~2 000 hashes."""
HASHRATE = 40_000.0
"""H/s of the emulated chip: about 20 nonces/s, while the daemon keeps most of a core."""
POOL_DIFFICULTY = SCALE * 512
"""Half the nonces are shares: about 10 shares/s."""
SHARES_PER_CYCLE = 5
"""Shares accepted after the return before the next unplug: it catches shares on the way."""
SAMPLE_S = 0.005
GOAL_S = 5.0
DEADLINE_S = 30.0
"""Longest wait for anything: past it the bench stops with an error (exit status 1)."""
NAME = "gamma"
POWER_UP = (
    ("reset held", "GPIO PIN0 00", "control"),
    ("regulator configured", "I2C WRITE 24 02 1F", "control"),
    ("VOUT set", "I2C WRITE 24 21", "control"),
    ("output on", "I2C WRITE 24 01 80", "control"),
    ("reset released", "GPIO PIN0 01", "control"),
    ("chip init", "chip bytes", "data"),
)
"""The power-up steps, in the order they must first appear after the return."""
MEASURES = ("mining_s", "first_job_s", "first_share_s")
"""(a) board state mining, (b) first job frame on the chip side, (c) first share accepted."""


class BenchError(Exception):
    """Something the bench waited for did not happen."""


def config_text(
    emulator: BoardEmulator, pool: LocalPool, state_dir: Path, ramp_step_delay: float | None
) -> str:
    delay = "" if ramp_step_delay is None else f"ramp_step_delay = {ramp_step_delay!r}"
    options = f"options = {{ {delay} }}" if delay else ""
    return f"""
[daemon]
state_dir = "{state_dir}"
[[pools]]
name = "local"
url = "{pool.url}"
user = "bench.replug"
[[devices]]
name = "{NAME}"
board = "bitaxe-gamma"
ports = {{ control = "{emulator.control_path}", data = "{emulator.data_path}" }}
difficulty_scale = {SCALE!r}
{options}
"""


async def wait_for(what: str, predicate: Callable[[], bool], limit: float = DEADLINE_S) -> float:
    """Sample ``predicate`` every 5 ms; the monotonic time it first held."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for: {what}")
        await asyncio.sleep(SAMPLE_S)
    return time.monotonic()


@dataclass
class Rig:
    emulator: BoardEmulator
    pool: LocalPool
    daemon: Daemon
    task: asyncio.Task[int]

    def board_state(self) -> str | None:
        status = self.daemon.boards[NAME].status
        return None if status is None else str(status.safety.state)

    def chain_state(self) -> ChainState:
        return self.daemon.runner(NAME).status.state

    def last_seq(self) -> int:
        traffic = self.emulator.board.traffic
        return traffic[-1].seq if traffic else 0

    def check(self) -> bool:
        """Fail at once if the daemon ended (True otherwise, to chain predicates)."""
        if self.task.done():
            raise BenchError(f"daemon ended early ({self.task.result()})")
        return True


def power_up_seen(traffic: list[TrafficEntry]) -> tuple[bool, list[str]]:
    """Whether every power-up step shows in ``traffic`` in order; the steps missing."""
    firsts: list[int] = []
    missing: list[str] = []
    for what, prefix, port in POWER_UP:
        seq = next((e.seq for e in traffic
                    if e.port == port and e.ok and e.what.startswith(prefix)), None)  # fmt: skip
        if seq is None:
            missing.append(what)
        else:
            firsts.append(seq)
    return not missing and firsts == sorted(firsts), missing


async def unplug(rig: Rig) -> dict[str, Any]:
    """Pull both ports; seconds until the daemon had stopped the chain and the board, and
    which watch saw it first (the data port's, or the safety poll's failed readings)."""
    rig.emulator.vanish_control()
    rig.emulator.chain_server.unplug()
    pulled = time.monotonic()

    def noticed() -> bool:
        rig.check()
        return rig.chain_state() is not ChainState.RUNNING and rig.board_state() != "mining"

    noticed_at = await wait_for("the daemon noticed the unplug", noticed)
    status = rig.daemon.boards[NAME].status
    reason = "" if status is None else status.safety.reason
    dispatch = rig.daemon.snapshot
    await wait_for("submits answered", lambda: dispatch().dispatch.in_flight == 0)
    by = "data port" if "data port" in reason else "safety poll"
    return {"noticed_s": noticed_at - pulled, "noticed_by": by}


async def replug(rig: Rig) -> dict[str, Any]:
    """Plug both ports back; the times from the return to each measure."""
    emulator, pool = rig.emulator, rig.pool
    seen, jobs, accepted = rig.last_seq(), emulator.chain.jobs_received, len(pool.accepted)
    await emulator.chain_server.plug()
    emulator.restore_control()
    back = time.monotonic()
    marks: dict[str, float] = {}

    def all_seen() -> bool:
        rig.check()
        now = time.monotonic()
        if rig.board_state() == "mining":
            marks.setdefault("mining_s", now - back)
        if emulator.chain.jobs_received > jobs:
            marks.setdefault("first_job_s", now - back)
        if len(pool.accepted) > accepted:
            marks.setdefault("first_share_s", now - back)
        return len(marks) == len(MEASURES)

    await wait_for("mining again", all_seen)
    traffic = [e for e in emulator.board.traffic if e.seq > seen]
    seen_ok, missing = power_up_seen(traffic)
    released = next((e.at for e in traffic if e.ok and e.what == "GPIO PIN0 01"), None)
    return {
        **{m: marks[m] for m in MEASURES},
        "reset_released_s": None if released is None else released - back,
        "power_up_seen": seen_ok,
        "missing": missing,
    }


async def mine_on(rig: Rig, shares: int) -> None:
    target = len(rig.pool.accepted) + shares
    await wait_for("mining on", lambda: rig.check() and len(rig.pool.accepted) >= target)


async def run(
    cycles: int, directory: Path, ramp_step_delay: float | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    pool = LocalPool(difficulty=POOL_DIFFICULTY)
    await pool.start()
    try:
        emulator = BoardEmulator("bitaxe-gamma", directory / "control", directory / "data",
                                 difficulty_scale=SCALE, hashrate=HASHRATE)  # fmt: skip
        async with emulator:
            daemon = Daemon(parse_config(config_text(emulator, pool, directory, ramp_step_delay)),
                            handle_signals=False)  # fmt: skip
            rig = Rig(emulator, pool, daemon, asyncio.create_task(daemon.run()))
            await mine_on(rig, SHARES_PER_CYCLE)
            results = []
            for cycle in range(cycles):
                noticed = await unplug(rig)
                result = {"cycle": cycle + 1, **noticed, **await replug(rig)}
                results.append(result)
                print_row(result)
                await mine_on(rig, SHARES_PER_CYCLE)
            await wait_for("submits answered", lambda: daemon.snapshot().dispatch.in_flight == 0)
            daemon.request_stop()
            status = await asyncio.wait_for(rig.task, DEADLINE_S)
            ledger = ledger_of(rig, status)
    finally:
        await pool.stop()
    return results, ledger


def ledger_of(rig: Rig, exit_status: int) -> dict[str, Any]:
    d = rig.daemon.snapshot().dispatch
    board = rig.daemon.boards[NAME]
    return {
        "exit_status": exit_status,
        "found": d.found_shares,
        "accepted": d.accepted,
        "rejected": d.rejected,
        "lost": d.lost,
        "lost_by_reason": dict(d.lost_by_reason),
        "pending": d.pending,
        "in_flight": d.in_flight,
        "balanced": d.balanced,
        "hw_errors": d.total.nonces.hw_error,
        "pool_accepted": len(rig.pool.accepted),
        "pool_rejected": len(rig.pool.rejected),
        "board_failures": board.failures,
        "vout_off_at_exit": not rig.emulator.board.tps.output_on,
    }


HEADER = "cycle  noticed  released   mining  first job  first share  power-up  seen by"
COLUMNS = ("noticed_s", "reset_released_s", *MEASURES)


def print_row(r: dict[str, Any]) -> None:
    times = "".join(f"{r[c]:9.3f}" if r[c] is not None else "        -" for c in COLUMNS)
    seen = "in order" if r["power_up_seen"] else f"NOT SEEN {r['missing']}"
    print(f"{r['cycle']:5d}{times}    {seen:9s} {r['noticed_by']}", flush=True)


def summary(
    results: list[dict[str, Any]], ledger: dict[str, Any], args: argparse.Namespace,
    load: tuple[float, float, float],
) -> dict[str, Any]:  # fmt: skip
    figures = {}
    for m in ("reset_released_s", *MEASURES):
        values = [r[m] for r in results if r[m] is not None]
        figures[m] = {"median": statistics.median(values), "max": max(values)} if values else None
    within = sum(1 for r in results if max(r[m] for m in MEASURES) <= GOAL_S)
    return {
        "bench": "replug",
        "cycles": len(results),
        "goal_s": GOAL_S,
        "ramp_step_delay": args.ramp_step_delay,
        "per_cycle": results,
        "figures": figures,
        "power_up_seen": sum(1 for r in results if r["power_up_seen"]),
        "within_5s": within,
        "noticed_by_data_port": sum(1 for r in results if r["noticed_by"] == "data port"),
        "shares_lost": ledger["lost"],
        "invalid": ledger["pool_rejected"] + ledger["hw_errors"],
        "ledger": ledger,
        "loadavg_start": load,
        "loadavg_end": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 cycles")
    parser.add_argument("--log-level", default="error")
    parser.add_argument("--ramp-step-delay", type=float, default=None,
                        help="driver seconds per 6.25 MHz step (default: its own)")  # fmt: skip
    args = parser.parse_args()
    cycles = 2 if args.quick else args.cycles
    configure_logging(args.log_level, "console", {})
    load = os.getloadavg()
    print(f"seconds from the unplug (noticed) and from the return (the rest); load {load}")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="replug-", dir="/tmp") as name:
        try:
            results, ledger = asyncio.run(run(cycles, Path(name), args.ramp_step_delay))
        except BenchError as exc:
            sys.exit(f"replug bench failed: {exc}")
    report = summary(results, ledger, args, load)
    for m, f in report["figures"].items():
        if f is not None:
            print(f"{m}: median {f['median']:.3f} s, max {f['max']:.3f} s")
    print(f"power-up seen {report['power_up_seen']}/{cycles}, within {GOAL_S:g} s "
          f"{report['within_5s']}/{cycles}, lost {report['shares_lost']}, "
          f"invalid {report['invalid']}, ledger balanced {ledger['balanced']}")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
