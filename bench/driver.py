"""Driver hot paths for one BM1366 chain, against the wire time of a job at 1 Mbaud.

Run ``python bench/driver.py``. Prints readable lines, then one JSON object on the last
line. A job frame is 88 bytes, 880 µs on a 1 Mbaud line (10 bits per byte); the budget is
10 % of that for the software cost of sending a job, and for parsing one reply.

* send: ``Bm1366Driver.send_work`` (encode, slot bookkeeping, write) on a running driver
  over a real pty, whose master side is drained by a thread that also answers enumeration;
* encode: the codec alone;
* parse: one 11-byte nonce reply through the resynchronising parser, and replies per
  second when they arrive in 64-reply reads;
* verify: the driver's nonce check (slot lookup, header rebuild, dSHA256, de-duplication).
* pacing: one BM1370 at 525 MHz, emulated in its own process with silicon time (each
  job ends when real chips would have exhausted it) under a fixed cap of real hashes per
  second, driven by the real driver over a pty with fresh work every job interval, as
  the daemon does.
  The hashes done per second, as a share of the cap, is the share of time the chips
  hash: with version rolling refused at the interval the driver used before (the
  reference 500 ms) and at the one it uses now, and with rolling granted.

Each figure is the median of several timed repeats (a busy machine makes runs noisy);
the pacing figures are one run each, all in the same run of this script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from stratum_client.asic.base import DeviceSpec
from stratum_client.asic.ptys import PtyPair
from stratum_client.logsetup import configure_logging
from stratum_client.work import JobBuilder, Work, parse_notify
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.bm1366 import Bm1366Driver
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.chips import BM1370
from stratum_client_bm13xx.chips import job_interval_ms as reference_interval_ms
from stratum_client_bm13xx.codec import NonceReply, codec_for
from stratum_client_bm13xx.driver import NonceChecker, ticket_target
from stratum_client_bm13xx.registers import Reg
from stratum_client_bm13xx.rx import HostFrameParser

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "data" / "stratum_vectors.json"
REPEATS = 7
JOBS = 2_000
REPLIES = 20_000
_FRAME_BYTES = 88
_BATCH = 8
WIRE_US = 88 * 10 / 1_000_000 * 1e6
"""Microseconds one job frame occupies a 1 Mbaud line."""
MASK = 0x1FFFE000
PACING_SECONDS = 4.0
PACING_CAP = 200_000.0
"""Real hashes per second the emulator may do: well below what a core manages, so the
share of time the chips hash, not CPU contention with the driver, sets the figure."""
PACING_SCALE = 2.0**-28
"""Ticket 256 × 2⁻²⁸: a nonce per 4096 hashes, so late-slot losses would show."""
NOMINAL_GHS = BM1370.expected_ghs(525.0)
"""1071 GH/s: what one BM1370 at 525 MHz hashes when it never idles."""


def _builder(version_mask: int) -> JobBuilder:
    vector = next(
        j for j in json.loads(VECTORS.read_text())["jobs"] if j["name"] == "slush-2023-diff683"
    )
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(vector["extranonce1"]),
        extranonce2_size=4,
        difficulty=512.0,
        version_mask=version_mask,
    )
    return JobBuilder(job)


def _works(count: int) -> list[Work]:
    builder = _builder(MASK)
    return [builder.build(n.to_bytes(4, "little")) for n in range(count)]


def _median_us(run: Callable[[], float], units: int) -> float:
    return statistics.median(run() / units * 1e6 for _ in range(REPEATS))


class _DrainPeer:
    """Reads everything the driver sends; answers the chip-id read so start() succeeds."""

    def __init__(self, pair: PtyPair) -> None:
        self.pair = pair
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        parser, codec = HostFrameParser(), codec_for("BM1366", 1)
        while not self.stop.is_set():
            data = self.pair.read(65536, timeout=0.05)
            self.received += len(data)
            if not data or b"\x52\x05" in data:  # cheap pre-check for the broadcast read
                for frame in parser.feed(data) if data else parser.flush():
                    if frame == frames.read_register(Reg.CHIP_ID):
                        self.pair.write(codec.encode_chip_id_reply())

    async def caught_up(self, total: int) -> None:
        while self.received < total:  # noqa: ASYNC110 - a thread's plain counter
            await asyncio.sleep(0.0002)


async def _timed_sends(driver: Bm1366Driver, peer: _DrainPeer, works: list[Work]) -> float:
    """Seconds spent inside send_work, letting the peer catch up between small batches.

    Waiting (untimed) keeps the pty from filling: a full pty makes writes partial, which
    measures the peer, and trips a transport bug that spins the loop (see docs/drivers.md).
    """
    spent, total = 0.0, peer.received
    for index in range(0, len(works), _BATCH):
        batch = works[index : index + _BATCH]
        start = time.perf_counter()
        for work in batch:
            await driver.send_work(work)
        spent += time.perf_counter() - start
        total += _FRAME_BYTES * len(batch)
        await peer.caught_up(total)
    return spent


async def _send_us(works: list[Work]) -> float:
    with tempfile.TemporaryDirectory() as tmp, PtyPair.open(Path(tmp) / "asic0") as pair:
        peer = _DrainPeer(pair)
        options = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.05}
        driver = Bm1366Driver(DeviceSpec(port=pair.path, chips=1, options=options))
        try:
            async with driver:
                await asyncio.sleep(0.1)  # let the bring-up traffic drain
                peer.received = 0
                samples = [
                    await _timed_sends(driver, peer, works) / len(works) * 1e6
                    for _ in range(REPEATS)
                ]
        finally:
            peer.stop.set()
            peer.thread.join(5)
    return statistics.median(samples)


def _encode_us(works: list[Work]) -> float:
    codec = codec_for("BM1366", 1)
    job_id = codec.model.job_ids()[0]

    def run() -> float:
        start = time.perf_counter()
        for work in works:
            codec.encode_job(work, job_id)
        return time.perf_counter() - start

    return _median_us(run, len(works))


def _replies(count: int) -> list[bytes]:
    codec = codec_for("BM1366", 1)
    job_id = codec.model.job_ids()[0]
    return [codec.encode_nonce_reply(n, job_id) for n in range(count)]


def _parse_single_us(replies: list[bytes]) -> float:
    parser = codec_for("BM1366", 1).parser()

    def run() -> float:
        start = time.perf_counter()
        for reply in replies:
            parser.feed(reply)
        return time.perf_counter() - start

    return _median_us(run, len(replies))


def _parse_rate(replies: list[bytes]) -> float:
    parser = codec_for("BM1366", 1).parser()
    chunks = [b"".join(replies[i : i + 64]) for i in range(0, len(replies), 64)]

    def run() -> float:
        start = time.perf_counter()
        for chunk in chunks:
            parser.feed(chunk)
        return time.perf_counter() - start

    return 1e6 / _median_us(run, len(replies))


def _verify_rate(work: Work, replies: list[bytes]) -> float:
    """Nonce checks per second, against a target that accepts every hash (none is lost)."""
    codec = codec_for("BM1366", 1)
    decoded = [r for r in map(codec.decode_reply, replies) if isinstance(r, NonceReply)]
    job_id = codec.model.job_ids()[0]

    def run() -> float:
        checker = NonceChecker(codec.model, ticket_target(256, 2.0**-40))  # fresh de-dup
        checker.assign(job_id, work)
        start = time.perf_counter()
        accepted = sum(checker.check(reply, 0.0)[1] is not None for reply in decoded)
        elapsed = time.perf_counter() - start
        assert accepted == len(decoded)
        return elapsed

    return 1e6 / _median_us(run, len(decoded))


Interval = Callable[[Bm1370Driver], float]


@contextlib.asynccontextmanager
async def _emulator(link: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``stratum-client emulate`` with silicon time in its own process, as chips hash
    off the host's CPU; its summary line is left on its stdout."""
    args = ["--chip", "bm1370", "--link", str(link), "--silicon-time"]
    args += ["--hashrate", str(PACING_CAP), "--step-hashes", "64"]
    args += ["--difficulty-scale", str(PACING_SCALE)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stratum_client", "emulate", *args, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 30)  # "… on <link> -> /dev/pts/N"
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


async def _paced_hashing(granted: bool, interval: Interval) -> dict[str, float]:
    """Share of the cap an emulated BM1370 (silicon time) hashes at a job interval.

    Hashes are read from the chip's total-count register (0x8C) over the wire, as the
    daemon reads them: one count is 2³² × ``PACING_SCALE`` hashes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        options = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.05}
        link = Path(tmp) / "asic0"
        spec = DeviceSpec(port=str(link), chips=1, difficulty_scale=PACING_SCALE, options=options)
        async with _emulator(link) as proc, Bm1370Driver(spec) as driver:
            if granted:
                await driver.set_version_mask(MASK)
            builder = _builder(MASK if granted else 0)
            nonces: list[object] = []
            driver.deliver_nonces(nonces.append)
            loop = asyncio.get_running_loop()
            count, start, sent = await driver.read_register(Reg.TOTAL_COUNT), loop.time(), 0
            while loop.time() - start < PACING_SECONDS:
                sent += 1
                await driver.send_work(builder.build(sent.to_bytes(4, "little")))
                await asyncio.sleep(interval(driver))
            elapsed = loop.time() - start
            counted = await driver.read_register(Reg.TOTAL_COUNT) - count
            result = {
                "interval_ms": round(interval(driver) * 1000, 3),
                "jobs_per_s": round(sent / elapsed, 1),
                "nonces": len(nonces),
                "hw_errors": sum(c.hw_errors for c in driver.counters),
                "stale": driver.stale_nonces,
            }
        assert proc.stdout is not None
        summary = (await proc.stdout.read()).decode()
    share = counted * 2**32 * PACING_SCALE / elapsed / PACING_CAP
    ran_out = re.search(r"(\d+) of (\d+) jobs ran out", summary)
    return {
        **result,
        "hashing_share": round(share, 4),
        "ghs_equivalent": round(share * NOMINAL_GHS, 1),
        "nonce_share": round(len(nonces) * 4096 / elapsed / PACING_CAP, 4),
        "jobs_ran_out": int(ran_out.group(1)) if ran_out else -1,
    }


def _before(driver: Bm1370Driver) -> float:
    """The interval the driver returned before pacing: the reference one, mask or not."""
    return reference_interval_ms(driver.chip_model, 1, driver.frequency_mhz) / 1000.0


async def _pacing() -> dict[str, dict[str, float]]:
    return {
        "refused_before": await _paced_hashing(False, _before),
        "refused_after": await _paced_hashing(False, lambda d: d.job_interval),
        "granted": await _paced_hashing(True, lambda d: d.job_interval),
    }


def main() -> None:
    configure_logging("warning", "console", {})
    works = _works(JOBS)
    send = asyncio.run(_send_us(works))
    encode = _encode_us(works)
    replies = _replies(REPLIES)
    parse_one = _parse_single_us(replies)
    parse_rate = _parse_rate(replies)
    verify_rate = _verify_rate(works[0], replies)
    pacing = asyncio.run(_pacing())
    result = {
        "wire_us_per_job_1mbaud": round(WIRE_US, 1),
        "send_work_us": round(send, 2),
        "send_work_fraction": round(send / WIRE_US, 4),
        "encode_us": round(encode, 2),
        "parse_reply_us": round(parse_one, 2),
        "parse_reply_fraction": round(parse_one / WIRE_US, 4),
        "parse_replies_per_s": round(parse_rate),
        "verify_nonces_per_s": round(verify_rate),
        "target_fraction": 0.10,
        "pacing_bm1370": pacing,
        "pacing_refused_after_vs_before": round(
            pacing["refused_after"]["hashing_share"] / pacing["refused_before"]["hashing_share"], 1
        ),
    }
    print(f"job frame on the wire at 1 Mbaud: {WIRE_US:.0f} µs")
    print(f"send_work (encode + slot + write over a pty): {send:.1f} µs ({send / WIRE_US:.1%})")
    print(f"  of which encode_job: {encode:.1f} µs")
    print(f"parse one nonce reply: {parse_one:.2f} µs ({parse_one / WIRE_US:.2%})")
    print(f"parser throughput (64-reply reads): {parse_rate:,.0f} replies/s")
    print(f"nonce verification: {verify_rate:,.0f} nonces/s")
    for case, figures in pacing.items():
        print(
            f"BM1370 pacing, rolling {case.replace('_', ' ')}: every {figures['interval_ms']} ms, "
            f"hashing {figures['hashing_share']:.1%} of the time ≈ {figures['ghs_equivalent']} GH/s"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
