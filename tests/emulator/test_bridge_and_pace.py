"""The emulator's USB bridge and silicon time, with the real driver over a real pty.

The bridge is modelled as a real FT230X behaves under Linux: at most 3 Mbaud, rates made
as 3 MHz over eighths, and chips sending at a rate it cannot receive are simply not
heard. Silicon time is checked against the chips' published facts (hardware.md §2.7:
BM1370 2040 small cores, BM1397 168 cores with 4 midstates side by side): a job of 2³²
nonces × versions lasts nonces × versions / (lanes × MHz) seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from stratum_client.asic.base import DeviceSpec, FoundNonce
from stratum_client.work import JobBuilder, Work, parse_notify
from stratum_client_bm13xx import frames, registers
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.bm1397 import Bm1397Driver
from stratum_client_bm13xx.chips import BM1370, BM1397
from stratum_client_bm13xx.emulator.chain import EmulatedChain
from stratum_client_bm13xx.emulator.pace import SiliconPace
from stratum_client_bm13xx.emulator.server import EmulatorServer
from stratum_client_bm13xx.fastbaud import BRIDGES, UnsupportedBaudError
from stratum_client_bm13xx.pll import pll_for_frequency
from stratum_client_bm13xx.registers import Reg

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's")

PATIENCE = 60.0
VECTORS = Path(__file__).resolve().parents[1] / "data" / "stratum_vectors.json"
SCALE = 2.0**-34
FAST = {"ramp_step_delay": 0.0, "enumerate_quiet": 0.05}
FT230X = BRIDGES["ft230x"]
MASK = 0x1FFFE000


def make_work(extranonce2: int, mask: int, midstates: int = 0) -> Work:
    jobs = json.loads(VECTORS.read_text())["jobs"]
    vector = next(j for j in jobs if j["name"] == "slush-2023-diff683")
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(vector["extranonce1"]),
        extranonce2_size=4,
        difficulty=1.0,
        version_mask=mask,
    )
    return JobBuilder(job).build(extranonce2.to_bytes(4, "little"), midstates=midstates)


async def one_nonce(driver: Bm1397Driver | Bm1370Driver, midstates: int) -> FoundNonce:
    sent = 0
    async with asyncio.timeout(PATIENCE):
        while True:
            sent += 1
            await driver.send_work(make_work(sent, MASK, midstates))
            try:
                async with asyncio.timeout(0.5):
                    return await driver.next_nonce()
            except TimeoutError:
                continue


# -- the bridge ---------------------------------------------------------------------------


async def test_chips_switched_beyond_the_bridge_go_unheard_and_the_driver_says_so(
    tmp_path: Path,
) -> None:
    chain = EmulatedChain("BM1397", 1, difficulty_scale=SCALE)
    async with EmulatorServer(chain, tmp_path / "asic0", bridge=FT230X) as server:
        # a pty shows no USB id: the driver assumes a native UART and asks for 3.125 Mbaud
        driver = Bm1397Driver(DeviceSpec(port=server.path, chips=1, options=FAST))
        with pytest.raises(UnsupportedBaudError) as caught:
            async with asyncio.timeout(PATIENCE):
                await driver.start()
        assert chain.baudrate == 3_125_000  # the chip took the switch, as silicon does
        assert server.bytes_unheard > 0
    message = str(caught.value)
    for part in (server.path, "0 of 1 chip(s)", "chips at 3125000", "'bridge'", "ft230x"):
        assert part in message


async def test_with_the_bridge_named_the_driver_picks_a_rate_it_carries(tmp_path: Path) -> None:
    chain = EmulatedChain("BM1397", 1, difficulty_scale=SCALE)
    async with EmulatorServer(chain, tmp_path / "asic0", bridge=FT230X) as server:
        options = {**FAST, "bridge": "ft230x"}
        spec = DeviceSpec(port=server.path, chips=1, difficulty_scale=SCALE, options=options)
        async with Bm1397Driver(spec) as driver:
            assert chain.baudrate == 1_562_500  # divider 1
            assert driver.baudrate == 1_500_000  # FTDI divisor 2
            found = await one_nonce(driver, midstates=4)
        assert found.work.midstates
        assert server.bytes_unheard == 0


async def test_the_chip_rate_requested_of_an_ftdi_it_cannot_make_is_unheard(
    tmp_path: Path,
) -> None:
    # 1 562 500 asked of the FTDI itself needs divisor 1.875, which the part cannot make
    chain = EmulatedChain("BM1397", 1, difficulty_scale=SCALE)
    async with EmulatorServer(chain, tmp_path / "asic0", bridge=FT230X) as server:
        options = {**FAST, "baud": 1_562_500}
        driver = Bm1397Driver(DeviceSpec(port=server.path, chips=1, options=options))
        with pytest.raises(UnsupportedBaudError, match="chips at 1562500 baud, host at 1562500"):
            async with asyncio.timeout(PATIENCE):
                await driver.start()


async def test_full_header_chips_at_1_mbaud_pass_the_ft230x(tmp_path: Path) -> None:
    chain = EmulatedChain("BM1370", 1, difficulty_scale=SCALE)
    async with EmulatorServer(chain, tmp_path / "asic0", bridge=FT230X) as server:
        spec = DeviceSpec(port=server.path, chips=1, difficulty_scale=SCALE, options=FAST)
        async with Bm1370Driver(spec) as driver:
            await driver.set_version_mask(MASK)
            assert driver.baudrate == chain.baudrate == 1_000_000
            await one_nonce(driver, midstates=0)


# -- silicon time -----------------------------------------------------------------------


def programmed(model: str, mhz: float, mask: int) -> EmulatedChain:
    chain = EmulatedChain(model, 1)
    pll = pll_for_frequency(chain.model, mhz).register
    chain.receive(frames.write_register(Reg.PLL0, pll))
    if chain.model.full_header:
        chain.receive(frames.write_register(Reg.VERSION_MASK, registers.version_mask_value(mask)))
    return chain


def send_job(chain: EmulatedChain, work: Work) -> None:
    job_id = chain.model.job_ids()[chain.jobs_received % chain.model.job_slots]
    chain.receive(chain.codec.encode_job(work, job_id))


def test_a_bm1370_job_without_rolling_lasts_4_ms_of_silicon() -> None:
    chain = programmed("BM1370", 525.0, 0)
    assert chain.search_seconds() is None
    send_job(chain, make_work(1, 0))
    assert chain.search_seconds() == pytest.approx(2**32 / (2040 * 525e6))  # 4.01 ms
    rolled = programmed("BM1370", 525.0, MASK)
    send_job(rolled, make_work(1, MASK))
    assert rolled.search_seconds() == pytest.approx(2**48 / (2040 * 525e6))  # 4.4 minutes
    assert BM1370.small_cores == 2040


def test_a_bm1397_job_lasts_one_pass_of_its_cores() -> None:
    chain = programmed("BM1397", 425.0, 0)
    send_job(chain, make_work(1, MASK, midstates=4))
    assert chain.search_seconds() == pytest.approx(2**32 / (168 * 425e6))  # 60 ms
    assert BM1397.cores == 168


def test_silicon_pace_ends_each_job_and_restarts_on_the_next() -> None:
    chain = programmed("BM1370", 525.0, 0)
    pace = SiliconPace()
    send_job(chain, make_work(1, 0))
    pace.note_input(chain, now=10.0)
    assert pace.busy(chain, now=10.003)
    assert pace.remaining(chain, now=10.003) == pytest.approx(0.00101, abs=1e-5)
    assert not pace.busy(chain, now=10.005)
    assert pace.jobs_exhausted == 1
    pace.note_input(chain, now=10.4)  # a register read is not a job: still exhausted
    assert not pace.busy(chain, now=10.4)
    send_job(chain, make_work(2, 0))
    pace.note_input(chain, now=10.5)
    assert pace.busy(chain, now=10.502)
    assert pace.jobs_exhausted == 1
