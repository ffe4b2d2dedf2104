"""Bm13xxDriver against a scripted chain on a real pty (no emulator needed).

The fake chain answers chip-id and register reads, records every frame the driver sends
and lets a test inject nonce replies built with the codec. Nonces are found by brute force
in the test, with an independent header/hash computation, at a ticket scaled down so a
valid nonce is 1 hash in 256.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from stratum_client.asic.base import DeviceSpec, FoundNonce
from stratum_client.asic.ptys import HotplugPty, PtyPair
from stratum_client.asic.registry import load_driver
from stratum_client.errors import ChipCountError, DriverError, DriverTimeoutError
from stratum_client.work import JobBuilder, Work, parse_notify
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.bm1366 import Bm1366Driver
from stratum_client_bm13xx.bm1368 import Bm1368Driver
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.bm1397 import Bm1397Driver
from stratum_client_bm13xx.chips import MODELS, ChipModel, model_by_name
from stratum_client_bm13xx.codec import FullHeaderJob, MidstateJob, NonceReply, codec_for
from stratum_client_bm13xx.driver import (
    Bm13xxDriver,
    DriverState,
    NonceChecker,
    Outcome,
    parse_options,
    ticket_target,
)
from stratum_client_bm13xx.pll import pll_for_frequency, ramp_plan
from stratum_client_bm13xx.registers import FAST_UART_1M, Reg, ticket_mask, version_mask_value
from stratum_client_bm13xx.rx import HostFrameParser

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's")

PATIENCE = 15.0
VECTORS = Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json"
SCALE = 2.0**-32
"""Ticket 256 × 2⁻³² → a nonce passes with probability 1/256."""
MASK = 0x1FFFE000
DRIVERS: dict[str, type[Bm13xxDriver]] = {
    "BM1366": Bm1366Driver,
    "BM1368": Bm1368Driver,
    "BM1370": Bm1370Driver,
    "BM1397": Bm1397Driver,
}
FAST = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.1}


# --------------------------------------------------------------------------------------
# the scripted chain
# --------------------------------------------------------------------------------------


class FakeChain:
    """Answers reads on the master side of a pty and records what the driver sent."""

    def __init__(
        self, pair: PtyPair, model: ChipModel, chips: int, *, answer: int | None = None
    ) -> None:
        self.pair = pair
        self.codec = codec_for(model, chips)
        self.model = model
        self.answer = chips if answer is None else answer
        self.chip_id = model.chip_id
        self.parser = HostFrameParser()
        self.frames: list[bytes] = []
        self.jobs: list[FullHeaderJob | MidstateJob] = []
        self.registers: dict[tuple[int, int], int] = {}
        self.silent = False
        self._fd = pair.master_fd
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def close(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = -1

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            self.close()
            return
        for frame in self.parser.feed(data):
            self._handle(frame)
        if self.parser.pending:
            # A frame ending in 0x55 is held until the next byte shows whether a preamble
            # starts there; a quiet line settles it, as for any reader of this parser.
            asyncio.get_running_loop().call_later(0.02, self._settle)

    def _settle(self) -> None:
        for frame in self.parser.flush():
            self._handle(frame)

    def _handle(self, frame: bytes) -> None:
        self.frames.append(frame)
        if frame[2] == frames.JOB_HEADER:
            self.jobs.append(self.codec.decode_job(frame))
            return
        cmd = frames.parse_command(frame)
        if cmd.kind is not frames.CommandKind.READ or self.silent:
            return
        if cmd.broadcast and cmd.register == Reg.CHIP_ID:
            value = self.chip_id << 16
            self.send(
                b"".join(self.codec.encode_register_reply(value, 0, 0) for _ in range(self.answer))
            )
        elif not cmd.broadcast:
            value = self.registers.get((cmd.chip_address, cmd.register), 0)
            self.send(self.codec.encode_register_reply(value, cmd.chip_address, cmd.register))

    def send(self, data: bytes) -> None:
        self.pair.write(data)

    def writes(self, register: int) -> list[bytes]:
        """Value bytes of every write to ``register`` seen so far, in order."""
        out = []
        for frame in self.frames:
            if frame[2] != frames.JOB_HEADER:
                cmd = frames.parse_command(frame)
                if cmd.kind is frames.CommandKind.WRITE and cmd.register == register:
                    out.append(cmd.value)
        return out


# --------------------------------------------------------------------------------------
# independent hashing
# --------------------------------------------------------------------------------------


def slush_job(mask: int = MASK) -> JobBuilder:
    vector = next(
        j for j in json.loads(VECTORS.read_text())["jobs"] if j["name"] == "slush-2023-diff683"
    )
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(vector["extranonce1"]),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=mask,
    )
    return JobBuilder(job)


def make_work(model: ChipModel, n: int = 0, mask: int = MASK) -> Work:
    midstates = 0 if model.full_header else 4
    return slush_job(mask).build(n.to_bytes(4, "little"), midstates=midstates)


def header(work: Work, version: int, nonce: int) -> bytes:
    """The 80-byte header, built without the project's header code."""
    prev = work.job.prevhash
    prev_header = b"".join(prev[i : i + 4][::-1] for i in range(0, 32, 4))
    fields = struct.pack("<III", work.ntime, work.job.nbits, nonce)
    return struct.pack("<I", version) + prev_header + work.merkle_root + fields


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash_value(work: Work, version: int, nonce: int) -> int:
    return int.from_bytes(dsha(header(work, version, nonce)), "little")


TARGET = ticket_target(256, SCALE)


def find_nonce(
    work: Work, version: int, chip: int, chips: int, *, good: bool = True, start: int = 0
) -> int:
    codec = codec_for("BM1366", chips)
    nonce = start
    while True:
        nonce = (nonce + 0x9E3779B1) & 0xFFFFFFFF
        if codec.chip_of_nonce(nonce) != chip:
            continue
        if (hash_value(work, version, nonce) < TARGET) == good:
            return nonce


def test_independent_header_matches_vector() -> None:
    vector = next(
        j for j in json.loads(VECTORS.read_text())["jobs"] if j["name"] == "slush-2023-diff683"
    )
    work = slush_job(0).build(bytes(4))
    built = header(work, work.version, 0x0A029ED1)
    assert built.hex() == vector["expect"]["header"]
    assert dsha(built)[::-1].hex() == vector["expect"]["hash"]


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture
def hotplug(tmp_path: Path) -> Iterator[HotplugPty]:
    with HotplugPty(tmp_path / "asic0") as device:
        yield device


def spec(path: str, chips: int, **overrides: object) -> DeviceSpec:
    options = dict(FAST)
    options.update(overrides.pop("options", {}))  # type: ignore[call-overload]
    return DeviceSpec(
        port=path,
        chips=chips,
        ticket_difficulty=256.0,
        difficulty_scale=SCALE,
        options=options,
        **overrides,  # type: ignore[arg-type]
    )


async def running(
    hotplug: HotplugPty, model: str, chips: int, **overrides: object
) -> tuple[Bm13xxDriver, FakeChain]:
    chain = FakeChain(hotplug.pair, model_by_name(model), chips)
    driver = DRIVERS[model](spec(hotplug.path, chips, **overrides))
    async with asyncio.timeout(PATIENCE):
        await driver.start()
    return driver, chain


@pytest.fixture
async def bm1366(hotplug: HotplugPty) -> AsyncIterator[tuple[Bm13xxDriver, FakeChain]]:
    driver, chain = await running(hotplug, "BM1366", 4)
    yield driver, chain
    await driver.stop()
    chain.close()


@pytest.fixture
async def bm1397(hotplug: HotplugPty) -> AsyncIterator[tuple[Bm13xxDriver, FakeChain]]:
    driver, chain = await running(hotplug, "BM1397", 2)
    yield driver, chain
    await driver.stop()
    chain.close()


async def wait_until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not predicate():  # noqa: ASYNC110 - polls plain counters
            await asyncio.sleep(0.01)


async def next_nonce(driver: Bm13xxDriver) -> FoundNonce:
    async with asyncio.timeout(PATIENCE):
        return await driver.next_nonce()


async def sent_job(driver: Bm13xxDriver, chain: FakeChain, work: Work) -> int:
    """Send ``work`` and return the job id the chain received it under."""
    before = len(chain.jobs)
    await driver.send_work(work)
    await wait_until(lambda: len(chain.jobs) > before)
    return chain.jobs[-1].job_id


def nonce_reply(chain: FakeChain, nonce: int, job_id: int, **fields: int) -> bytes:
    return chain.codec.encode_nonce_reply(nonce, job_id, **fields)


# --------------------------------------------------------------------------------------
# bring-up
# --------------------------------------------------------------------------------------


async def test_start_enumerates_inits_ramps_and_switches_baud(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    info = driver.chain
    assert info is not None
    assert (info.model, info.chip_count, info.addresses) == ("BM1366", 4, (0, 64, 128, 192))
    assert info.chip_ids == (0x1366,) * 4
    assert driver.state is DriverState.RUNNING
    sent = [bytes(f) for f in chain.frames]
    addresses = [f[4] for f in sent if f[2] == 0x40]
    assert addresses == [0, 64, 128, 192]
    assert frames.chain_inactive() in sent
    assert chain.writes(Reg.TICKET_MASK) == [ticket_mask(256)]
    # rolling stays off until the daemon grants a mask
    assert set(chain.writes(Reg.VERSION_MASK)) == {version_mask_value(0)}
    plls = chain.writes(Reg.PLL0)
    assert len(plls) == len(ramp_plan(50.0, 485.0))
    assert plls[-1] == pll_for_frequency(MODELS["BM1366"], 485.0).register
    assert chain.writes(Reg.FAST_UART)[-1] == FAST_UART_1M
    # the baud switch ends the init; a chip-id read at the new rate checks the chips answer
    switch = frames.write_register(Reg.FAST_UART, FAST_UART_1M)
    assert sent[-2:] == [switch, frames.read_register(Reg.CHIP_ID)]
    assert driver.baudrate == 1_000_000
    assert driver.frequency_mhz == pytest.approx(485.0, abs=1)
    assert driver.ticket_difficulty == 256
    assert driver.effective_ticket_difficulty == 256 * SCALE


async def test_baud_option_zero_stays_at_115200(hotplug: HotplugPty) -> None:
    driver, chain = await running(hotplug, "BM1370", 1, options={"baud": 0})
    try:
        assert driver.baudrate == 115_200
        assert chain.writes(Reg.FAST_UART) == []
    finally:
        await driver.stop()
        chain.close()


async def test_bm1397_bring_up_uses_pll_divider_and_fast_misc_baud(
    bm1397: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1397
    steps = ramp_plan(50.0, 425.0)
    assert len(chain.writes(Reg.PLL0)) == 2 * len(steps)
    assert len(chain.writes(Reg.PLL0_DIVIDER)) == 2 * len(steps)
    assert chain.writes(Reg.MISC_CONTROL)[-1] == bytes.fromhex("00006031")
    assert driver.baudrate == 3_125_000
    assert driver.job_interval == pytest.approx(0.0395 / 2, rel=0.05)  # 2 chips


async def test_wrong_chip_count_is_a_clear_error(hotplug: HotplugPty) -> None:
    chain = FakeChain(hotplug.pair, MODELS["BM1368"], 4, answer=3)
    driver = Bm1368Driver(spec(hotplug.path, 4))
    try:
        with pytest.raises(ChipCountError, match=r"expected 4 chip\(s\), found 3") as caught:
            await driver.start()
        assert (caught.value.expected, caught.value.found) == (4, 3)
        assert hotplug.path in str(caught.value)
        assert driver.state is DriverState.STOPPED
    finally:
        chain.close()


async def test_no_answer_is_zero_chips(hotplug: HotplugPty) -> None:
    chain = FakeChain(hotplug.pair, MODELS["BM1366"], 1, answer=0)
    try:
        with pytest.raises(ChipCountError, match="found 0"):
            await Bm1366Driver(spec(hotplug.path, 1)).start()
    finally:
        chain.close()


async def test_wrong_model_names_both(hotplug: HotplugPty) -> None:
    chain = FakeChain(hotplug.pair, MODELS["BM1370"], 1)
    try:
        with pytest.raises(DriverError, match=r"BM1370 \(0x1370\).*for the BM1366"):
            await Bm1366Driver(spec(hotplug.path, 1)).start()
    finally:
        chain.close()


async def test_driver_is_reusable_after_stop(hotplug: HotplugPty) -> None:
    driver, chain = await running(hotplug, "BM1366", 1)
    await driver.stop()
    assert driver.state is DriverState.STOPPED
    with pytest.raises(DriverError, match="not running"):
        await driver.next_nonce()
    with pytest.raises(DriverError, match="not started"):
        await driver.send_work(make_work(MODELS["BM1366"]))
    async with asyncio.timeout(PATIENCE), driver:
        assert str(driver.state) == "running"
    chain.close()


# --------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ramp_delay": 1}, "unknown driver option 'ramp_delay'"),
        ({"ramp_step_delay": "fast"}, "'ramp_step_delay' must be a number"),
        ({"ramp_step_delay": -1}, "'ramp_step_delay' must be a number ≥ 0"),
        ({"enumerate_quiet": 0}, "'enumerate_quiet' must be a number > 0"),
        ({"initial_mhz": True}, "'initial_mhz' must be a number"),
        ({"baud": 1.5}, "'baud' must be an integer"),
        ({"baud": 2_000_000}, "'baud' = 2000000 is not a rate the BM1366"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(DriverError, match=message):
        Bm1366Driver(DeviceSpec(port="/dev/null", chips=1, options=options))


def test_options_parse_and_defaults() -> None:
    opts = parse_options("p", {"ramp_step_delay": 0, "initial_mhz": 100, "baud": 115200})
    assert (opts.ramp_step_delay, opts.enumerate_quiet, opts.initial_mhz) == (0.0, 0.2, 100.0)
    driver = Bm1397Driver(DeviceSpec(port="p", chips=1, options={"baud": 1_500_000}))
    assert driver.options.baud == 1_500_000
    assert driver.target_baudrate == 1_562_500  # the nearest divider; the host follows it


def test_bad_spec_values_are_driver_errors() -> None:
    with pytest.raises(DriverError, match="no PLL setting"):
        Bm1366Driver(DeviceSpec(port="p", chips=1, frequency_mhz=5000.0))
    with pytest.raises(DriverError, match="chip count"):
        Bm1366Driver(DeviceSpec(port="p", chips=0))
    with pytest.raises(DriverError, match="finite and positive"):
        Bm1366Driver(DeviceSpec(port="p", chips=1, difficulty_scale=0.0))


async def test_ticket_is_a_power_of_two_and_job_intervals_follow_the_codec() -> None:
    # With rolling granted the codec's interval holds (without, see test_pacing.py).
    driver = Bm1368Driver(DeviceSpec(port="p", chips=6, ticket_difficulty=300.0))
    assert driver.ticket_difficulty == 256
    await driver.set_version_mask(MASK)
    assert driver.job_interval == pytest.approx(0.5 / 8)
    for cls, chips, interval in ((Bm1366Driver, 1, 2.0), (Bm1370Driver, 2, 0.25)):
        other = cls(DeviceSpec(port="p", chips=chips))
        await other.set_version_mask(MASK)
        assert other.job_interval == pytest.approx(interval)


@pytest.mark.parametrize("name", ["bm1366", "bm1368", "bm1370", "bm1397"])
def test_registry_loads_builtin_drivers(name: str) -> None:
    cls = load_driver(name)
    assert issubclass(cls, Bm13xxDriver)
    assert cls.model == name.upper()
    assert cls.midstates == (4 if name == "bm1397" else 0)


# --------------------------------------------------------------------------------------
# nonces
# --------------------------------------------------------------------------------------


async def test_valid_nonce_is_verified_and_mapped(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    await driver.set_version_mask(MASK)
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    version = work.version | (0x1234 << 13)
    nonce = find_nonce(work, version, chip=2, chips=4)
    chain.send(nonce_reply(chain, nonce, job_id, version_bits=0x1234 << 13, small_core=5))
    found = await next_nonce(driver)
    assert (found.work, found.nonce, found.version, found.chip) == (work, nonce, version, 2)
    assert found.hash == dsha(header(work, version, nonce))
    assert int.from_bytes(found.hash, "little") < TARGET
    assert found.difficulty >= driver.effective_ticket_difficulty * 65535 / 65536
    assert driver.counters[2].nonces == 1
    assert driver.counters[2].last_nonce_at == found.received_at
    assert sum(c.hw_errors for c in driver.counters) == 0


async def test_job_frames_match_the_codec_and_ids_advance(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    ids = [await sent_job(driver, chain, make_work(MODELS["BM1366"], n)) for n in range(3)]
    model = MODELS["BM1366"]
    assert ids == list(model.job_ids()[:3])
    expected = chain.codec.encode_job(make_work(model, 2), ids[2])
    assert chain.frames[-1] == expected


async def test_bad_hash_is_a_hw_error_not_a_nonce(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    bad = find_nonce(work, work.version, chip=1, chips=4, good=False)
    good = find_nonce(work, work.version, chip=3, chips=4)
    chain.send(nonce_reply(chain, bad, job_id) + nonce_reply(chain, good, job_id))
    found = await next_nonce(driver)
    assert found.nonce == good
    assert driver.counters[1].hw_errors == 1
    assert driver.counters[1].nonces == 0


async def test_version_outside_the_programmed_mask_is_a_hw_error(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    bits = 0x3 << 13
    nonce = find_nonce(work, work.version | bits, chip=0, chips=4)  # a valid hash, but
    chain.send(nonce_reply(chain, nonce, job_id, version_bits=bits))  # rolling is off
    await wait_until(lambda: driver.counters[0].hw_errors == 1)
    assert driver.counters[0].nonces == 0


async def test_set_version_mask_writes_a4_and_enables_rolled_nonces(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    await driver.set_version_mask(0xFFFFFFFF)  # the chip can roll only bits 13..28
    assert driver.version_mask == MASK
    await wait_until(lambda: chain.writes(Reg.VERSION_MASK)[-1] == version_mask_value(MASK))
    await driver.set_version_mask(0)
    await wait_until(lambda: chain.writes(Reg.VERSION_MASK)[-1] == version_mask_value(0))
    with pytest.raises(DriverError, match="32-bit"):
        await driver.set_version_mask(1 << 32)


async def test_duplicate_replies_are_filtered_and_counted(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    nonce = find_nonce(work, work.version, chip=1, chips=4)
    other = find_nonce(work, work.version, chip=1, chips=4, start=nonce)
    reply = nonce_reply(chain, nonce, job_id)
    chain.send(reply + reply + nonce_reply(chain, other, job_id))
    assert (await next_nonce(driver)).nonce == nonce
    assert (await next_nonce(driver)).nonce == other
    assert driver.counters[1].duplicates == 1
    assert driver.counters[1].nonces == 2


async def test_resent_work_does_not_yield_a_duplicate_share(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    first = await sent_job(driver, chain, work)
    second = await sent_job(driver, chain, work)
    nonce = find_nonce(work, work.version, chip=0, chips=4)
    chain.send(nonce_reply(chain, nonce, first))
    await next_nonce(driver)
    chain.send(nonce_reply(chain, nonce, second))
    await wait_until(lambda: driver.counters[0].duplicates == 1)


async def test_unknown_job_id_is_counted(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    chain.send(nonce_reply(chain, 0x12345678, MODELS["BM1366"].job_ids()[5]))
    await wait_until(lambda: driver.unknown_job_nonces == 1)
    assert sum(c.hw_errors for c in driver.counters) == 1


async def test_flushed_work_nonces_are_counted_stale_and_passed_on(
    bm1366: tuple[Bm13xxDriver, FakeChain],
) -> None:
    """A late nonce for flushed work is still a real hash: the daemon, not the driver,
    decides whether its job is gone (and counts a share on it as lost, with the reason)."""
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    await driver.flush_work()
    nonce = find_nonce(work, work.version, chip=0, chips=4)
    chain.send(nonce_reply(chain, nonce, job_id))
    found = await next_nonce(driver)
    assert (found.work, found.nonce) == (work, nonce)
    assert driver.stale_nonces == 1
    assert sum(c.hw_errors for c in driver.counters) == 0
    assert sum(c.nonces for c in driver.counters) == 1


async def test_corrupted_stream_counts_crc_errors(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    work = make_work(MODELS["BM1366"])
    job_id = await sent_job(driver, chain, work)
    nonce = find_nonce(work, work.version, chip=0, chips=4)
    reply = bytearray(nonce_reply(chain, nonce, job_id))
    reply[4] ^= 0x01  # single-bit errors never pass CRC-5
    chain.send(b"\x00\x13" + bytes(reply) + nonce_reply(chain, nonce, job_id))
    assert (await next_nonce(driver)).nonce == nonce
    assert driver.crc_errors >= 1


async def test_midstate_index_selects_the_version(bm1397: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1397
    work = make_work(MODELS["BM1397"])
    assert len(work.midstates) == 4
    job_id = await sent_job(driver, chain, work)
    version = work.midstates[2].version
    assert version != work.version
    nonce = find_nonce(work, version, chip=1, chips=2)
    chain.send(nonce_reply(chain, nonce, job_id, midstate_index=2))
    found = await next_nonce(driver)
    assert (found.version, found.chip) == (version, 1)
    assert found.hash == dsha(header(work, version, nonce))


async def test_midstate_index_beyond_the_work_is_a_hw_error(
    bm1397: tuple[Bm13xxDriver, FakeChain],
) -> None:
    driver, chain = bm1397
    work = make_work(MODELS["BM1397"], mask=0)
    assert len(work.midstates) == 1
    job_id = await sent_job(driver, chain, work)
    nonce = find_nonce(work, work.version, chip=0, chips=2)
    chain.send(nonce_reply(chain, nonce, job_id, midstate_index=1))
    await wait_until(lambda: driver.counters[0].hw_errors == 1)


async def test_queue_overflow_drops_the_oldest(hotplug: HotplugPty) -> None:
    class Tiny(Bm1366Driver):
        nonce_queue_size = 2

    chain = FakeChain(hotplug.pair, MODELS["BM1366"], 1)
    async with asyncio.timeout(PATIENCE), Tiny(spec(hotplug.path, 1)) as driver:
        work = make_work(MODELS["BM1366"])
        job_id = await sent_job(driver, chain, work)
        nonces, start = [], 0
        for _ in range(3):
            start = find_nonce(work, work.version, chip=0, chips=1, start=start)
            nonces.append(start)
        chain.send(b"".join(nonce_reply(chain, n, job_id) for n in nonces))
        await wait_until(lambda: driver.dropped_nonces == 1)
        assert [(await driver.next_nonce()).nonce for _ in range(2)] == nonces[1:]
    chain.close()


def test_nonce_checker_stale_when_the_job_mask_cannot_express_the_version() -> None:
    model = MODELS["BM1370"]
    work = make_work(model, mask=0)
    checker = NonceChecker(model, TARGET)
    checker.version_mask = MASK
    checker.assign(0x18, work)
    codec = codec_for(model, 1)
    bits = 1 << 13
    nonce = find_nonce(work, work.version | bits, chip=0, chips=1)
    reply = codec.decode_reply(codec.encode_nonce_reply(nonce, 0x18, version_bits=bits))
    assert isinstance(reply, NonceReply)
    outcome, found = checker.check(reply, 0.0)
    assert outcome is Outcome.STALE
    assert found is not None
    assert found.version == work.version | bits


# --------------------------------------------------------------------------------------
# registers and frequency
# --------------------------------------------------------------------------------------


async def test_read_register_routes_the_reply(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    chain.registers[(128, Reg.TOTAL_COUNT)] = 0xDEADBEEF
    async with asyncio.timeout(PATIENCE):
        assert await driver.read_register(Reg.TOTAL_COUNT, chip=2) == 0xDEADBEEF
    chain.silent = True
    with pytest.raises(DriverTimeoutError, match="chip 1"):
        await driver.read_register(Reg.ERROR_COUNT, chip=1, timeout=0.2)
    with pytest.raises(DriverError, match="no chip 7"):
        await driver.read_register(Reg.ERROR_COUNT, chip=7)


async def test_set_frequency_ramps_in_small_steps(bm1366: tuple[Bm13xxDriver, FakeChain]) -> None:
    driver, chain = bm1366
    before = len(chain.writes(Reg.PLL0))
    actual = await driver.set_frequency(400.0)
    assert actual == pll_for_frequency(MODELS["BM1366"], 400.0).actual_mhz
    assert driver.frequency_mhz == actual
    await wait_until(lambda: len(chain.writes(Reg.PLL0)) - before == len(ramp_plan(485.0, 400.0)))
    await wait_until(lambda: len(chain.writes(Reg.HASH_COUNTING_NUMBER)) == 2)
    await driver.set_version_mask(MASK)  # rolling granted: the codec's fixed interval
    assert driver.job_interval == pytest.approx(0.5)
    with pytest.raises(DriverError, match="positive number of MHz"):
        await driver.set_frequency(-5)


# --------------------------------------------------------------------------------------
# unplug / replug
# --------------------------------------------------------------------------------------


async def test_survives_unplug_and_resends_the_latest_work(hotplug: HotplugPty) -> None:
    driver, chain = await running(hotplug, "BM1366", 1)
    try:
        model = MODELS["BM1366"]
        await sent_job(driver, chain, make_work(model, 0))
        chain.close()
        hotplug.unplug()
        await wait_until(lambda: driver.state is DriverState.RECONNECTING)
        await driver.send_work(make_work(model, 1))  # neither raises nor is lost
        await driver.send_work(make_work(model, 2))
        await driver.set_frequency(450.0)
        chain = FakeChain(hotplug.plug(), model, 1)
        await wait_until(lambda: driver.state is DriverState.RUNNING)
        assert driver.reconnects == 1
        await wait_until(lambda: len(chain.jobs) == 1)
        job = chain.jobs[0]
        assert isinstance(job, FullHeaderJob)
        assert job.merkle_root == make_work(model, 2).merkle_root
        assert chain.writes(Reg.PLL0)[-1] == pll_for_frequency(model, 450.0).register
        work = make_work(model, 2)
        nonce = find_nonce(work, work.version, chip=0, chips=1)
        chain.send(nonce_reply(chain, nonce, job.job_id))
        assert (await next_nonce(driver)).nonce == nonce
    finally:
        await driver.stop()
        chain.close()


async def test_wrong_chain_after_replug_is_retried_not_fatal(hotplug: HotplugPty) -> None:
    driver, chain = await running(hotplug, "BM1366", 2)
    try:
        chain.close()
        hotplug.unplug()
        chain = FakeChain(hotplug.plug(), MODELS["BM1366"], 2, answer=1)
        await asyncio.sleep(0.5)
        assert driver.state is DriverState.RECONNECTING
        chain.answer = 2
        await wait_until(lambda: driver.state is DriverState.RUNNING)
    finally:
        await driver.stop()
        chain.close()
