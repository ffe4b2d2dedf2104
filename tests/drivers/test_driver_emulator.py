"""Every built-in driver against the chip emulator over a real pty.

The emulator really hashes, at a ticket scaled down by ``SCALE`` so Python can find
nonces quickly; the driver is told the same scale. Each nonce the driver yields is checked
here against a header and hash rebuilt from the test vector's fields with nothing but
``struct`` and ``hashlib`` (coinbase, merkle root, version, header, target).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_client.asic.base import DeviceSpec, FoundNonce
from stratum_client.asic.registry import detect_chain
from stratum_client.errors import ChipCountError
from stratum_client.work import JobBuilder, Work, parse_notify
from stratum_client_bm13xx.bm1366 import Bm1366Driver
from stratum_client_bm13xx.bm1368 import Bm1368Driver
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.bm1397 import Bm1397Driver
from stratum_client_bm13xx.driver import Bm13xxDriver, DriverState
from stratum_client_bm13xx.emulator.chain import EmulatedChain, Faults
from stratum_client_bm13xx.emulator.server import EmulatorServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's")

PATIENCE = 60.0
"""Upper bound for anything that should take well under a second (loaded CI machines)."""
VECTORS = Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json"
TICKET = 256.0
SCALE = 2.0**-34
"""Ticket 256 × 2⁻³⁴: the emulator reports one nonce per 64 hashes on average."""
MASK = 0x1FFFE000
DRIVERS: dict[str, type[Bm13xxDriver]] = {
    "BM1366": Bm1366Driver,
    "BM1368": Bm1368Driver,
    "BM1370": Bm1370Driver,
    "BM1397": Bm1397Driver,
}
OPTIONS = {"ramp_step_delay": 0.0}


# --------------------------------------------------------------------------------------
# the vector, and an independent check of every nonce
# --------------------------------------------------------------------------------------


def _vector() -> dict[str, object]:
    jobs = json.loads(VECTORS.read_text())["jobs"]
    return next(j for j in jobs if j["name"] == "slush-2023-diff683")


def builder() -> JobBuilder:
    vector = _vector()
    job = parse_notify(
        vector["notify"],  # type: ignore[arg-type]
        extranonce1=bytes.fromhex(str(vector["extranonce1"])),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=MASK,
    )
    return JobBuilder(job)


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True)
class Reference:
    """Header fields recomputed from the notify hex, without the project's work code."""

    prevhash: bytes
    coinb1: bytes
    coinb2: bytes
    extranonce1: bytes
    branches: tuple[bytes, ...]
    nbits: int
    ntime: int

    @classmethod
    def load(cls) -> Reference:
        vector = _vector()
        notify: list[object] = vector["notify"]  # type: ignore[assignment]
        prev = bytes.fromhex(str(notify[1]))
        return cls(
            prevhash=b"".join(prev[i : i + 4][::-1] for i in range(0, 32, 4)),
            coinb1=bytes.fromhex(str(notify[2])),
            coinb2=bytes.fromhex(str(notify[3])),
            extranonce1=bytes.fromhex(str(vector["extranonce1"])),
            branches=tuple(bytes.fromhex(b) for b in notify[4]),  # type: ignore[attr-defined]
            nbits=int(str(notify[6]), 16),
            ntime=int(str(notify[7]), 16),
        )

    def merkle_root(self, extranonce2: bytes) -> bytes:
        node = dsha(self.coinb1 + self.extranonce1 + extranonce2 + self.coinb2)
        for branch in self.branches:
            node = dsha(node + branch)
        return node

    def header(self, extranonce2: bytes, version: int, nonce: int) -> bytes:
        return (
            struct.pack("<I", version)
            + self.prevhash
            + self.merkle_root(extranonce2)
            + struct.pack("<III", self.ntime, self.nbits, nonce)
        )


REFERENCE = Reference.load()
TARGET = math.floor((1 << (224 - 8)) / SCALE)
"""A chip at ticket 2⁸ reports hashes below 2²¹⁶; the scale widens that."""


def verify(found: FoundNonce, chips: int) -> None:
    """Fail unless ``found`` is a genuine nonce of its work under its version."""
    work = found.work
    versions = {m.version for m in work.midstates} or None
    if versions is None:  # full-header: rolling may only touch the granted bits
        assert (found.version ^ work.job.version) & ~MASK == 0
    else:
        assert found.version in versions
    header = REFERENCE.header(work.extranonce2, found.version, found.nonce)
    digest = dsha(header)
    assert digest == found.hash
    assert int.from_bytes(digest, "little") < TARGET
    chip_byte = (int.from_bytes(found.nonce.to_bytes(4, "little"), "big") >> 17) & 0xFF
    assert found.chip == min(chip_byte // (256 // chips), chips - 1)
    assert 0 <= found.core < 128


# --------------------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------------------


@dataclass
class Rig:
    driver: Bm13xxDriver
    server: EmulatorServer
    chain: EmulatedChain
    builder: JobBuilder
    sent: int = 0

    def work(self) -> Work:
        self.sent += 1
        midstates = 0 if self.driver.chip_model.full_header else 4
        return self.builder.build(self.sent.to_bytes(4, "little"), midstates=midstates)

    async def feed(self) -> Work:
        work = self.work()
        await self.driver.send_work(work)
        return work

    async def nonces(
        self, count: int, until: Callable[[list[FoundNonce]], bool] = lambda _: True
    ) -> list[FoundNonce]:
        """Collect ``count`` nonces, and more until ``until(found)``, feeding fresh work."""
        found: list[FoundNonce] = []
        feeder = asyncio.create_task(self._feed_forever())
        try:
            async with asyncio.timeout(PATIENCE):
                while len(found) < count or not until(found):
                    found.append(await self.driver.next_nonce())
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        return found

    async def _feed_forever(self) -> None:
        while True:
            await self.feed()
            await asyncio.sleep(max(0.05, min(self.driver.job_interval, 0.5)))


@asynccontextmanager
async def rig(
    tmp_path: Path,
    model: str,
    chips: int,
    faults: Faults | None = None,
    options: dict[str, object] | None = None,
) -> AsyncIterator[Rig]:
    link = tmp_path / "asic0"
    chain = EmulatedChain(
        model, chips, difficulty_scale=SCALE, faults=faults or Faults(), seed=1234
    )
    spec = DeviceSpec(
        port=str(link),
        chips=chips,
        ticket_difficulty=TICKET,
        difficulty_scale=SCALE,
        options=OPTIONS if options is None else options,
    )
    async with EmulatorServer(chain, link=str(link)) as server:
        driver = DRIVERS[model](spec)
        async with asyncio.timeout(PATIENCE):
            await driver.start()
        try:
            await driver.set_version_mask(MASK)
            yield Rig(driver, server, chain, builder())
        finally:
            await driver.stop()


# --------------------------------------------------------------------------------------
# every model, 1 and 4 chips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chips", [1, 4])
@pytest.mark.parametrize("model", list(DRIVERS))
async def test_nonces_verify_independently(tmp_path: Path, model: str, chips: int) -> None:
    async with rig(tmp_path, model, chips) as r:
        info = r.driver.chain
        assert info is not None
        assert (info.model, info.chip_count) == (model, chips)
        full_header = r.driver.chip_model.full_header

        def rolled(found: FoundNonce) -> bool:
            base = found.work.version if full_header else found.work.midstates[0].version
            return found.version != base

        def enough(found: list[FoundNonce]) -> bool:
            return any(map(rolled, found)) and len({f.chip for f in found}) == chips

        found = await r.nonces(8 * chips, until=enough)
        for nonce in found:
            verify(nonce, chips)
        assert any(map(rolled, found))
        assert sum(c.nonces for c in r.driver.counters) >= len(found)
        assert sum(c.hw_errors for c in r.driver.counters) == 0


# --------------------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------------------


@pytest.mark.chaos
async def test_corrupted_replies_never_pass(tmp_path: Path) -> None:
    async with rig(tmp_path, "BM1366", 2, Faults(corrupt_rate=0.01)) as r:
        found = await r.nonces(50, until=lambda _: r.driver.crc_errors > 0)
        for nonce in found:
            verify(nonce, 2)
        assert r.driver.crc_errors > 0


@pytest.mark.chaos
async def test_duplicates_are_filtered_and_counted(tmp_path: Path) -> None:
    async with rig(tmp_path, "BM1370", 1, Faults(duplicate_nonces=True)) as r:
        found = await r.nonces(20, until=lambda _: r.driver.counters[0].duplicates > 0)
        keys = [(f.work.key, f.nonce, f.version) for f in found]
        assert len(keys) == len(set(keys))
        for nonce in found:
            verify(nonce, 1)


@pytest.mark.chaos
async def test_resumes_within_five_seconds_of_replug(tmp_path: Path) -> None:
    async with rig(tmp_path, "BM1366", 1) as r:
        await r.nonces(1)
        r.server.unplug()
        async with asyncio.timeout(PATIENCE):
            while r.driver.state is not DriverState.RECONNECTING:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await r.feed()  # must neither raise nor be lost
        plugged_at = time.monotonic()
        await r.server.plug()
        found = await r.nonces(1, until=lambda f: f[-1].received_at > plugged_at)
        first = min(f.received_at for f in found if f.received_at > plugged_at)
        assert first - plugged_at < 5.0, "the product requires hashing within 5 s of replug"
        assert r.driver.reconnects == 1
        assert str(r.driver.state) == "running"


async def test_wrong_chip_count_is_reported(tmp_path: Path) -> None:
    link = tmp_path / "asic0"
    chain = EmulatedChain("BM1368", 3, difficulty_scale=SCALE, seed=1)
    spec = DeviceSpec(port=str(link), chips=4, options=OPTIONS)
    async with EmulatorServer(chain, link=str(link)):
        with pytest.raises(ChipCountError, match=r"expected 4 chip\(s\), found 3"):
            async with asyncio.timeout(PATIENCE):
                await Bm1368Driver(spec).start()


@pytest.mark.parametrize("chips", [1, 4])
@pytest.mark.parametrize("model", ["BM1366", "BM1397"])
async def test_probe_identifies_the_emulated_chain(tmp_path: Path, model: str, chips: int) -> None:
    link = tmp_path / "asic0"
    async with EmulatorServer(EmulatedChain(model, chips, seed=1), link=str(link)):
        async with asyncio.timeout(PATIENCE):
            result = await detect_chain(str(link))
    assert result.models == {model: chips}


async def test_a_ramp_that_takes_time_runs_while_the_chain_mines(tmp_path: Path) -> None:
    """50 → 525 MHz is 76 steps; at 0.05 s a step the chain mines from the first one."""
    async with rig(tmp_path, "BM1366", 1, options={"ramp_step_delay": 0.05}) as r:
        driver, chip = r.driver, r.chain.chips[0]
        assert driver.state is DriverState.RUNNING
        assert driver.frequency_mhz < 100  # started near initial_mhz (50), not at 525
        (found,) = await r.nonces(1)
        verify(found, 1)
        assert driver.frequency_mhz < 525  # a verified nonce before the ramp's end
        reached = await driver.set_frequency(400)  # a new end for the ramp under way
        async with asyncio.timeout(PATIENCE):  # the driver's count and the chip's PLL
            while driver.frequency_mhz != reached or not math.isclose(chip.mhz, reached):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        (found,) = await r.nonces(1)
        verify(found, 1)
