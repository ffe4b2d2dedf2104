"""The floor under ``bench/daemon.py``'s latencies: a relay process that only moves bytes.

``bench/daemon.py`` times a notify from the pool's socket write to the job frame's
arrival on the chip side's pty, and a nonce from the pty write to the submit line's
arrival at the pool. Both spans hold two kernel deliveries (TCP over loopback, a pty) and
two process wake-ups besides the daemon's own work. This measures those alone: the relay
here reads a notify-sized line and at once writes a job-sized frame to the pty, and reads
a nonce-sized reply and at once writes a submit-sized line back. It parses nothing.

The measuring side paces and stamps exactly as ``bench/daemon.py`` does: notifies half a
second apart (each met by a cold relay), nonces at the latency chain's rate, stamps taken
just before each write and in the read callbacks, and the same hashing load on this
process as its emulated chip (64 double SHA-256 per step at 50 kH/s).

``python bench/relay_floor.py`` prints one JSON object on its last line;
``bench/daemon.py`` runs it beside the daemon's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import time
import tty
from typing import Any, cast

from stratum_client.eventloop import EVENT_LOOPS, EventLoopChoice, run

JOB_FRAME = bytes(88)
"""A BM1366 job frame's size on the wire."""
NONCE_REPLY = bytes(11)
"""A BM1366 nonce reply's size."""
SUBMIT_LINE = (
    b'{"id":1234,"method":"mining.submit","params":["bench.worker","6a1b","00000000'
    b'00000001","6566a1b2","1a2b3c4d","00000000"]}\n'
)
NOTIFY_LINE = b'{"id":null,"method":"mining.notify","params":[' + b'"' + b"ab" * 600 + b'"]}\n'
"""About the size of a notify with a typical coinbase and a dozen merkle branches."""
HASHRATE = 50_000.0
STEP_HASHES = 64
NONCE_INTERVAL = 0.04
"""The latency chain's share rate: about 25 per second."""


class _Relay(asyncio.Protocol):
    """The relay's socket side: a complete line out of the socket → a job frame to the pty."""

    def __init__(self, pty_fd: int) -> None:
        self._pty = pty_fd
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if b"\n" in data:
            os.write(self._pty, JOB_FRAME)


async def _relay(port: int, pty_path: str) -> None:
    loop = asyncio.get_running_loop()
    fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    _, relay = await loop.create_connection(lambda: _Relay(fd), "127.0.0.1", port)

    def on_pty() -> None:
        if os.read(fd, 4096) and relay.transport is not None:
            relay.transport.write(SUBMIT_LINE)

    loop.add_reader(fd, on_pty)
    await loop.create_future()  # until killed


def run_relay(port: int, pty_path: str, event_loop: EventLoopChoice) -> None:
    """The relay process's body, on the event loop the daemon would choose."""
    run(_relay(port, pty_path), event_loop)


class _Stamps:
    """Arrival times, stamped in a read callback; :meth:`next` waits for the next one."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self._waiter: asyncio.Future[None] | None = None

    def stamp(self) -> None:
        self.times.append(time.monotonic_ns())
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, count: int) -> int:
        """The stamp after the first ``count``: a callback wakes this, nothing polls."""
        while len(self.times) <= count:
            self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self._waiter, 30)
        return self.times[count]


class _PoolSide(asyncio.Protocol):
    def __init__(self, lines: _Stamps, connected: asyncio.Future[asyncio.Transport]) -> None:
        self._lines = lines
        self._connected = connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connected.set_result(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if b"\n" in data:
            self._lines.stamp()


async def _hash_load() -> None:
    header = bytes(80)
    while True:
        for _ in range(STEP_HASHES):
            hashlib.sha256(hashlib.sha256(header).digest()).digest()
        await asyncio.sleep(STEP_HASHES / HASHRATE)


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """Sample count, median and 99th percentile in µs (NaN when nothing was measured)."""
    if not samples_ns:
        return {"n": 0, "p50_us": float("nan"), "p99_us": float("nan")}
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_us": round(statistics.median(ordered) / 1000, 1),
        "p99_us": round(p99 / 1000, 1),
    }


async def measure_floor(seconds: float, blocks: int, event_loop: EventLoopChoice) -> dict[str, Any]:
    """notify → job byte and nonce → submit through the byte-moving relay."""
    loop = asyncio.get_running_loop()
    lines, frames = _Stamps(), _Stamps()
    connected: asyncio.Future[asyncio.Transport] = loop.create_future()
    server = await loop.create_server(lambda: _PoolSide(lines, connected), "127.0.0.1", 0)
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)

    def on_frame() -> None:
        frames.stamp()
        os.read(master, 4096)

    loop.add_reader(master, on_frame)
    port = server.sockets[0].getsockname()[1]
    relay = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--relay", str(port), os.ttyname(slave), event_loop
    )
    load = asyncio.create_task(_hash_load())
    notify_to_job: list[int] = []
    nonce_to_submit: list[int] = []
    try:
        pool = await asyncio.wait_for(connected, 30)
        await asyncio.sleep(0.5)
        per_block = max(1, int(seconds / blocks / NONCE_INTERVAL) - 1)
        for _ in range(blocks):
            await asyncio.sleep(NONCE_INTERVAL)
            seen, sent = len(frames.times), time.monotonic_ns()
            pool.write(NOTIFY_LINE)
            notify_to_job.append(await frames.next(seen) - sent)
            for _ in range(per_block):
                await asyncio.sleep(NONCE_INTERVAL)
                seen, sent = len(lines.times), time.monotonic_ns()
                os.write(master, NONCE_REPLY)
                nonce_to_submit.append(await lines.next(seen) - sent)
    finally:
        load.cancel()
        loop.remove_reader(master)
        relay.kill()
        await relay.wait()
        server.close()
        os.close(master)
        os.close(slave)
    return {
        "notify_to_job_byte": percentiles(notify_to_job),
        "nonce_to_submit": percentiles(nonce_to_submit),
    }


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relay", nargs=3, metavar=("PORT", "PTY", "LOOP"), help=argparse.SUPPRESS)
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default="auto")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--blocks", type=int, default=60)
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse()
    if args.relay is not None:
        run_relay(int(args.relay[0]), args.relay[1], cast(EventLoopChoice, args.relay[2]))
    else:
        figures = asyncio.run(measure_floor(args.seconds, args.blocks, args.event_loop))
        print(json.dumps({"bench": "relay_floor", "event_loop": args.event_loop, **figures}))
