"""Daemon latency and footprint: pool to chips and back, CPU and memory.

The daemon runs as its own process (``python -m stratum_client run``), exactly as systemd
runs it, so nothing measured here shares its event loop. This process plays both of its
neighbours and timestamps them with the system-wide monotonic clock:

* **notify → first job byte**: from just before the pool side encodes the
  ``mining.notify`` for a new block (clean jobs) and writes it to its socket, to the
  moment the chip side's pty reader is called with the bytes that complete the first job
  frame for that block (stamped on entry, before the read and the frame decoding).
* **nonce → submit**: from just before the chip side writes a nonce reply to the pty, to
  the moment the chunk holding the end of the ``mining.submit`` line carrying that nonce
  was handed to the pool side's stream reader (stamped in its ``feed_data``).

Both spans therefore include the kernel's socket and pty delivery and the wake-up of the
daemon, not just its own processing. Both neighbours live on this process's event loop, so
a stamp can still be late by one of its own steps; the emulated chips hash in steps of 64
hashes (about 0.1 ms) to keep that small. Then CPU time (user + system, per wall second)
and peak RSS (VmHWM) of the daemon process are read from ``/proc`` while it drives 1, 16
and 256 emulated chains whose hashrate is capped so the emulators fit beside it.

Beside the latencies it reports their floor (``bench/relay_floor.py``): the same two
spans through a relay process that only moves bytes, same pacing, same stamps. What the
daemon adds is the difference.

Targets: p99 ≤ 1 ms for each latency on one chain; 256 chains under one core;
RSS ≤ 80 MB. Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from relay_floor import measure_floor, percentiles  # type: ignore[import-not-found]  # bench/ is not a package

from stratum_client.logsetup import configure_logging
from stratum_client.testing.pool import LocalPool
from stratum_client_bm13xx.codec import FullHeaderJob
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.server import EmulatorServer

SCALE = 2.0**-29
"""Latency run: ticket 256 × 2⁻²⁹ = 2⁻²¹, a nonce (and share) every ~2 000 hashes."""
LATENCY_HASHRATE = 50_000.0
"""H/s of the latency chain: about 25 shares/s, a steady load rather than a flood that
would measure queueing, and this process stays mostly idle so its stamps are prompt."""
FOOTPRINT_SCALE = SCALE
"""Footprint runs: at 1 000 H/s a chain finds a share every ~2 s, so 256 chains keep
~128 shares/s flowing through the daemon, not just job refreshes."""
STEP_HASHES = 64
_TICK = os.sysconf("SC_CLK_TCK")


class StampedChain(EmulatedChain):
    """An emulated chain that notes when a job for a new previous-block hash arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prevhash: bytes | None = None
        self.new_block_jobs: list[int] = []
        self.read_at = 0
        """When the server's pty reader was called with the bytes being handled now."""

    def _on_job(self, frame: bytes) -> None:
        super()._on_job(frame)
        job = self.codec.decode_job(frame)
        if isinstance(job, FullHeaderJob) and job.prevhash != self.prevhash:
            self.prevhash = job.prevhash
            self.new_block_jobs.append(self.read_at)


class StampedServer(EmulatorServer):
    """An emulator server that stamps pty reads and every nonce reply it writes."""

    chain: StampedChain

    def __init__(self, chain: StampedChain, *args: Any, **kwargs: Any) -> None:
        super().__init__(chain, *args, **kwargs)
        self.sent_at: dict[int, int] = {}
        self._seen = 0

    def _on_readable(self) -> None:
        self.chain.read_at = time.monotonic_ns()
        super()._on_readable()

    def _send(self, data: bytes) -> None:
        now = time.monotonic_ns()  # before the write: its syscall is part of the span
        reported = self.chain.reported  # unbounded: the chain is built with record_limit=None
        for record in itertools.islice(reported, self._seen, None):
            self.sent_at.setdefault(record.nonce, now)
        self._seen = len(reported)
        super()._send(data)


class StampedPool(LocalPool):
    """The validating local pool, stamping notifies as they are written and each submit
    line when its last byte reached the pool's stream reader."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submit_at: dict[int, int] = {}
        self.notify_at: list[int] = []
        self._line_arrived = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Stamp every chunk as the transport delivers it, not when the line is handled.

        Handling a line waits for a loop step of this process; the arrival stamp of the
        chunk holding the line's newline does not.
        """
        chunks: deque[tuple[int, int]] = deque()  # (bytes received up to its end, when)
        received = consumed = 0
        feed, readline = reader.feed_data, reader.readline

        def feed_data(data: bytes) -> None:
            nonlocal received
            received += len(data)
            chunks.append((received, time.monotonic_ns()))
            feed(data)

        async def stamped_readline() -> bytes:
            nonlocal consumed
            line = await readline()
            consumed += len(line)
            while chunks and chunks[0][0] < consumed:
                chunks.popleft()
            self._line_arrived = chunks[0][1] if chunks else time.monotonic_ns()
            return line

        reader.feed_data = feed_data  # type: ignore[method-assign,assignment]
        reader.readline = stamped_readline  # type: ignore[method-assign]
        await super()._serve(reader, writer)

    def _write(self, client: Any, message: dict[str, Any]) -> None:
        if message.get("method") == "mining.notify":
            self.notify_at.append(time.monotonic_ns())
        super()._write(client, message)

    async def _handle_line(self, client: Any, line: bytes) -> None:
        now = self._line_arrived
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            request = json.loads(line)
            if request.get("method") == "mining.submit":
                self.submit_at.setdefault(int(request["params"][4], 16), now)
        await super()._handle_line(client, line)


def _config(pool_url: str, links: list[str], scale: float, event_loop: str) -> str:
    devices = "".join(
        f"""
[[devices]]
name = "chain{n}"
driver = "bm1366"
port = "{link}"
chips = 1
difficulty_scale = {scale!r}
options = {{ ramp_step_delay = 0 }}
"""
        for n, link in enumerate(links)
    )
    return f"""
[daemon]
log_level = "warning"
log_format = "json"
event_loop = "{event_loop}"

[[pools]]
name = "bench"
url = "{pool_url}"
user = "bench.worker"
{devices}"""


@contextlib.asynccontextmanager
async def _daemon(
    config_text: str, workdir: Path, source: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The daemon as systemd runs it; ``source`` runs another tree's code (a checkout of
    the project, put first on the path) instead of the installed one."""
    config = workdir / "config.toml"
    config.write_text(config_text)
    log = (workdir / "daemon.log").open("wb")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if source is not None:  # ``-m`` puts the working directory first: run from the tree
        env["PYTHONPATH"] = os.pathsep.join([str(source), str(source / "drivers")])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratum_client", "run", "--config", str(config),
        stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=source or workdir,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        log.close()


async def _until(
    condition: Any,
    what: str,
    timeout: float = 120.0,  # noqa: ASYNC109
    *,
    required: bool = True,
) -> bool:
    """Wait for ``condition``; past ``timeout`` abort the bench, or report False."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if required:
                raise SystemExit(f"bench/daemon.py: timed out waiting for {what}")
            return False
        await asyncio.sleep(0.02)
    return True


async def latency(
    seconds: float, blocks: int, event_loop: str, source: Path | None = None
) -> dict[str, Any]:
    """notify → job byte and nonce → submit on one BM1366 chain."""
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        workdir = Path(tmp)
        link = str(workdir / "asic0")
        chain = StampedChain("bm1366", 1, difficulty_scale=SCALE, record_limit=None)
        pool = StampedPool(difficulty=SCALE * 256)
        async with (
            pool,
            StampedServer(
                chain, link, hashrate=LATENCY_HASHRATE, step_hashes=STEP_HASHES
            ) as server,
            _daemon(_config(pool.url, [link], SCALE, event_loop), workdir, source),
        ):
            await _until(lambda: len(pool.accepted) >= 3, "the first shares")
            notify_to_job: list[int] = []
            for _ in range(blocks):
                await asyncio.sleep(seconds / blocks)
                seen, notified = len(chain.new_block_jobs), len(pool.notify_at)
                await pool.broadcast_new_block()
                await _until(lambda s=seen: len(chain.new_block_jobs) > s, "a new-block job")
                notify_to_job.append(chain.new_block_jobs[seen] - pool.notify_at[notified])
            await asyncio.sleep(0.5)
            nonce_to_submit = [
                pool.submit_at[n] - t for n, t in server.sent_at.items() if n in pool.submit_at
            ]
    return {
        "notify_to_job_byte": percentiles(notify_to_job),
        "nonce_to_submit": percentiles(nonce_to_submit),
        "accepted": len(pool.accepted),
        "rejected": len(pool.rejected),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def footprint(
    chains: int, seconds: float, hashrate: float, event_loop: str
) -> dict[str, Any]:
    """The daemon's CPU per wall second and peak RSS while driving ``chains`` chains."""
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        workdir = Path(tmp)
        links = [str(workdir / f"asic{n}") for n in range(chains)]
        emulated = [EmulatedChain("bm1366", 1, difficulty_scale=FOOTPRINT_SCALE) for _ in links]
        async with contextlib.AsyncExitStack() as stack:
            pool = await stack.enter_async_context(
                LocalPool(difficulty=SCALE * 256, job_interval=10)
            )
            for chain, link in zip(emulated, links, strict=True):
                server = EmulatorServer(chain, link, hashrate=hashrate, step_hashes=256)
                await stack.enter_async_context(server)
            proc = await stack.enter_async_context(
                _daemon(_config(pool.url, links, FOOTPRINT_SCALE, event_loop), workdir)
            )
            # A slow start is a figure too: measure whatever is mining after the wait.
            await _until(lambda: all(c.has_work for c in emulated), "", 180.0, required=False)
            mining = sum(c.has_work for c in emulated)
            await asyncio.sleep(1.0)
            cpu0, wall0 = _cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, wall1 = _cpu_seconds(proc.pid), time.monotonic()
            rss = _peak_rss_mb(proc.pid)
            alive = proc.returncode is None
    return {
        "chains": chains,
        "chains_mining": mining,
        "cores_used": round((cpu1 - cpu0) / (wall1 - wall0), 3),
        "peak_rss_mb": round(rss, 1),
        "accepted": len(pool.accepted),
        "rejected": len(pool.rejected),
        "daemon_alive": alive,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", "console", {})
    result: dict[str, Any] = {"bench": "daemon", "event_loop": args.event_loop}
    if args.only in (None, "latency") and args.compare is None:
        result["latency"] = await latency(args.latency_seconds, args.blocks, args.event_loop)
        result["floor"] = await measure_floor(args.latency_seconds, args.blocks, args.event_loop)
        result["above_floor_p50_us"] = _above_floor(result["latency"], result["floor"])
    if args.compare is not None:
        result["compare"] = await _compare(args)
    if args.only in (None, "footprint"):
        result["footprint"] = [
            await footprint(n, args.seconds, args.hashrate, args.event_loop) for n in args.chains
        ]
    return result


_SPANS = ("notify_to_job_byte", "nonce_to_submit")


def _above_floor(daemon: dict[str, Any], floor: dict[str, Any]) -> dict[str, float]:
    """Each span's p50 less the byte-moving relay's: roughly the daemon's own share."""
    return {span: round(daemon[span]["p50_us"] - floor[span]["p50_us"], 1) for span in _SPANS}


async def _compare(args: argparse.Namespace) -> dict[str, Any]:
    """Latency of this tree and of ``--compare``'s, in alternating rounds on one machine,
    with the relay floor once per round; the medians over rounds of each run's p50 and
    p99 are compared."""
    rounds: dict[str, list[dict[str, Any]]] = {"this": [], "other": [], "floor": []}
    order = [("other", args.compare), ("this", None)]
    for _ in range(args.rounds):
        order.reverse()  # ABBA: neither tree always runs first
        for name, source in order:
            run = await latency(args.latency_seconds, args.blocks, args.event_loop, source)
            rounds[name].append(run)
        floor = await measure_floor(args.latency_seconds, args.blocks, args.event_loop)
        rounds["floor"].append(floor)
    summary: dict[str, Any] = {"other_tree": str(args.compare), "rounds": args.rounds}
    for span in _SPANS:
        for stat in ("p50_us", "p99_us"):
            this, other, floor = (
                statistics.median(r[span][stat] for r in rounds[name])
                for name in ("this", "other", "floor")
            )
            summary[f"{span}_{stat}"] = {
                "this": this,
                "other": other,
                "ratio": round(this / other, 3),
                "floor": floor,
            }
    summary["runs"] = rounds
    return summary


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (smoke test)")
    parser.add_argument("--only", choices=("latency", "footprint"), help="run just one part")
    parser.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the daemon's [daemon] event_loop (default auto: uvloop when installed)",
    )
    parser.add_argument("--chains", default="1,16,256", help="chain counts for the footprint")
    parser.add_argument("--seconds", type=float, default=20.0, help="footprint window")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--blocks", type=int, default=60, help="new blocks announced")
    parser.add_argument("--hashrate", type=float, default=1000.0, help="H/s per footprint chain")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout of the project: also run its daemon, alternating, and "
        "report both latencies and their ratios (this / other)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds to compare")
    args = parser.parse_args()
    args.chains = [int(n) for n in str(args.chains).split(",") if n]
    if args.quick:
        args.chains, args.seconds, args.latency_seconds, args.blocks = [1, 4], 3.0, 6.0, 10
    return args


if __name__ == "__main__":
    report = asyncio.run(main(_parse()))
    print(json.dumps(report))
