"""Job pacing without version rolling, against the chips' published facts.

Truth used here, independent of the code: each small core does one double SHA-256 per
clock (hardware.md §2.7: BM1366 894, BM1368 1276, BM1370 2040 small cores; default 485,
490, 525 MHz), a job without rolling is 2³² nonces, the reference intervals with rolling
(2 s, 0.5 s, 0.5 s over nextpow2(chips); BM1397 39.5 ms at 425 MHz, §3), and a job frame
of 88 bytes (BM1397: 152) at 10 bits a byte on the wire.
"""

from __future__ import annotations

import pytest

from stratum_client.asic.base import DeviceSpec
from stratum_client_bm13xx.bm1366 import Bm1366Driver
from stratum_client_bm13xx.bm1368 import Bm1368Driver
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.bm1397 import Bm1397Driver
from stratum_client_bm13xx.chips import BM1366, BM1368, BM1370, BM1397, ChipModel
from stratum_client_bm13xx.pacing import job_interval_ms, job_wire_ms, rolled_versions

MASK = 0x1FFFE000
NONCES = 2**32
FACTS = [  # model, small cores, default MHz, reference interval with rolling (ms)
    (BM1366, 894, 485.0, 2000.0),
    (BM1368, 1276, 490.0, 500.0),
    (BM1370, 2040, 525.0, 500.0),
]
WIRE_MS_1M = 88 * 10 / 1_000_000 * 1000  # 0.88 ms


@pytest.mark.parametrize(("model", "small", "mhz", "reference"), FACTS)
def test_without_rolling_a_chip_gets_its_next_job_before_its_nonces_run_out(
    model: ChipModel, small: int, mhz: float, reference: float
) -> None:
    interval = job_interval_ms(model, 1, mhz, 0, 1_000_000)
    hashes_per_ms = small * mhz * 1e3
    assert interval * hashes_per_ms <= NONCES  # never idle between jobs
    # and not far more jobs than needed: half the space, as the reference splits it in
    # powers of two (2048 for the BM1368's 1276 small cores: a third of the real space)
    assert interval * hashes_per_ms >= NONCES / 4
    assert interval >= WIRE_MS_1M  # the line carries one frame per interval
    assert interval < reference / 100  # the old interval idled the chip > 99 % of it


def test_bm1370_interval_is_half_its_nonce_space_time() -> None:
    space_ms = NONCES / (2048 * 525e6) * 1e3  # 2040 small cores, split in powers of two
    assert space_ms == pytest.approx(3.995, abs=0.001)
    assert job_interval_ms(BM1370, 1, 525.0, 0, 1_000_000) == pytest.approx(space_ms / 2)


@pytest.mark.parametrize(("model", "small", "mhz", "reference"), FACTS)
@pytest.mark.parametrize("chips", [1, 2, 6])
def test_with_rolling_granted_the_reference_interval_stays(
    model: ChipModel, small: int, mhz: float, reference: float, chips: int
) -> None:
    per_chain = reference / (1 << (chips - 1).bit_length())
    assert job_interval_ms(model, chips, mhz, MASK, 1_000_000) == pytest.approx(per_chain)
    # 2^16 versions × 2^32 nonces last minutes: the interval only refreshes work
    assert per_chain * small * mhz * 1e3 * chips < NONCES * 2**16


def test_a_narrow_mask_scales_the_interval_with_its_versions() -> None:
    two_bits = 0x00006000  # bits 13 and 14: 4 versions
    assert rolled_versions(BM1370, two_bits) == 4
    assert job_interval_ms(BM1370, 1, 525.0, two_bits, 1_000_000) == pytest.approx(
        4 * job_interval_ms(BM1370, 1, 525.0, 0, 1_000_000)
    )
    assert rolled_versions(BM1370, 0xE0000000) == 1  # bits the chip cannot roll


def test_long_chains_are_bounded_by_the_line() -> None:
    # 8 × BM1370: the space lasts 0.5 ms, shorter than a frame may take of the line
    assert job_wire_ms(BM1370, 1_000_000) == pytest.approx(WIRE_MS_1M)
    assert job_interval_ms(BM1370, 8, 525.0, 0, 1_000_000) == pytest.approx(2 * WIRE_MS_1M)
    at_115200 = 88 * 10 / 115_200 * 1000
    assert job_interval_ms(BM1370, 1, 525.0, 0, 115_200) == pytest.approx(2 * at_115200)


def test_bm1397_keeps_its_midstate_sized_interval() -> None:
    for mask in (0, MASK):
        assert job_interval_ms(BM1397, 1, 425.0, mask, 3_125_000) == pytest.approx(39.5, abs=0.05)
    assert job_wire_ms(BM1397, 1_500_000) == pytest.approx(152 * 10 / 1.5e6 * 1000)


async def test_the_driver_interval_follows_the_granted_mask() -> None:
    driver = Bm1370Driver(DeviceSpec(port="p", chips=1))
    assert driver.job_interval == pytest.approx(NONCES / (2048 * 525e6) / 2)
    await driver.set_version_mask(MASK)
    assert driver.job_interval == pytest.approx(0.5)
    await driver.set_version_mask(0)  # a pool that withdraws rolling
    assert driver.job_interval < 0.0025
    slow = Bm1368Driver(DeviceSpec(port="p", chips=1, options={"baud": 0}))
    assert slow.job_interval == pytest.approx(2 * 88 * 10 / 115_200)
    assert Bm1366Driver(DeviceSpec(port="p", chips=1)).job_interval < 0.005
    midstate = Bm1397Driver(DeviceSpec(port="p", chips=1))
    assert midstate.job_interval == pytest.approx(0.0395, abs=5e-5)
