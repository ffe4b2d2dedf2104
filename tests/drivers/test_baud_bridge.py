"""Fast baud chosen from the serial bridge, against documented bytes and rates.

Independent truth used here: the register-write frame layout and CRC-5 of the BM13xx
serial protocol (computed bit by bit below), the documented fast-UART values (0x28 =
``11 30 02 00`` → 1 Mbaud; 0x18 divider byte ``0x60 | div`` → 25 MHz / (8 · (div + 1))),
the gekko driver's Compac F pairing (chip 0x18 = ``00 00 61 31``, FTDI divisor 2 =
1.5 Mbaud), and Linux ftdi_sio's FTDI rate rule: 3 MHz over a divisor in eighths, at
most 3,000,000 baud on FT232R/FT-X parts, 9600 when asked for more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_client.asic.base import DeviceSpec
from stratum_client.config import load_config
from stratum_client.errors import DriverError, StratumClientError
from stratum_client_bm13xx.bm1370 import Bm1370Driver
from stratum_client_bm13xx.bm1397 import Bm1397Driver
from stratum_client_bm13xx.chips import BM1366, BM1368, BM1370, BM1397
from stratum_client_bm13xx.fastbaud import (
    BRIDGES,
    UnsupportedBaudError,
    bridge_for,
    bridge_named,
    chip_rates,
    plan_baud,
    usb_id_of,
)
from stratum_client_bm13xx.options import parse_options

FT230X = BRIDGES["ft230x"]
PORT = "/dev/ttyUSB0"


def ref_crc5(data: bytes) -> int:
    """x⁵+x²+1, init 0x1F, MSB first, bit by bit."""
    crc = 0x1F
    for byte in data:
        for i in range(7, -1, -1):
            feedback = ((crc >> 4) & 1) ^ ((byte >> i) & 1)
            crc = ((crc << 1) & 0x1F) ^ (0x05 if feedback else 0)
    return crc


def write_all(register: int, value: str) -> bytes:
    """``55 AA 51 09 00 reg d0..d3 crc5``: a broadcast register write."""
    body = bytes([0x51, 0x09, 0x00, register]) + bytes.fromhex(value)
    return b"\x55\xaa" + body + bytes([ref_crc5(body)])


def test_reference_frames_match_the_documented_vectors() -> None:
    assert write_all(0x28, "11300200") == bytes.fromhex("55 AA 51 09 00 28 11 30 02 00 03")
    assert write_all(0x18, "00006131") == bytes.fromhex("55 AA 51 09 00 18 00 00 61 31 1C")


# -- the FTDI rate rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "runs_at"),
    [
        (3_000_000, 3_000_000.0),  # divisor 1
        (2_000_000, 2_000_000.0),  # divisor 1.5
        (1_500_000, 1_500_000.0),  # divisor 2: the gekko driver's Compac F rate
        (1_000_000, 1_000_000.0),  # divisor 3
        (115_200, 24_000_000 / 208),  # divisor 26: 115 384.6 baud
        (3_125_000, 24_000_000 / 2500),  # too high for FT-X: ftdi_sio falls back to 9600
        (1_562_500, None),  # divisor 1.875: between 1 and 2, not one the part makes
        (0, None),  # B0 hangs the line up
    ],
)
def test_ft230x_generates_rates_as_ftdi_sio_programs_them(
    requested: int, runs_at: float | None
) -> None:
    assert FT230X.generated_rate(requested) == runs_at


def test_ft230x_host_rate_for_each_chip_rate() -> None:
    assert FT230X.host_baud(3_125_000) is None  # beyond the part's 3 Mbaud
    assert FT230X.host_baud(1_562_500) == 1_500_000  # 4 % apart, as the gekko driver runs
    assert FT230X.host_baud(1_000_000) == 1_000_000
    assert FT230X.host_baud(115_741) == 115_942  # 24 MHz / 207: the default divider


# -- choosing the fast rate -------------------------------------------------------------


def test_bm1397_behind_an_ft230x_defaults_to_divider_1() -> None:
    plan = plan_baud(BM1397, PORT, None, FT230X)
    assert plan.frame == write_all(0x18, "00006131")
    assert (plan.chip_baud, plan.host_baud) == (1_562_500, 1_500_000)


def test_unknown_bridge_keeps_the_native_uart_default() -> None:
    plan = plan_baud(BM1397, PORT, None, None)
    assert plan.frame == write_all(0x18, "00006031")  # divider 0
    assert plan.chip_baud == plan.host_baud == 3_125_000
    full = plan_baud(BM1370, PORT, None, None)
    assert full.frame == bytes.fromhex("55 AA 51 09 00 28 11 30 02 00 03")
    assert full.chip_baud == full.host_baud == 1_000_000


@pytest.mark.parametrize("model", [BM1366, BM1368, BM1370])
def test_full_header_chips_keep_1_mbaud_behind_an_ft230x(model: object) -> None:
    plan = plan_baud(model, PORT, None, FT230X)  # type: ignore[arg-type]
    assert plan.frame == bytes.fromhex("55 AA 51 09 00 28 11 30 02 00 03")
    assert plan.chip_baud == plan.host_baud == 1_000_000


def test_a_rate_the_bridge_cannot_carry_is_refused_naming_port_bridge_and_rates() -> None:
    with pytest.raises(UnsupportedBaudError) as caught:
        plan_baud(BM1397, PORT, 3_125_000, FT230X)
    message = str(caught.value)
    assert isinstance(caught.value, StratumClientError)
    for part in (PORT, "FTDI FT230X", "0403:6015", "3000000", "1562500", "1041667"):
        assert part in message
    assert "3125000" in message


def test_the_baud_option_overrides_the_bridge_default() -> None:
    plan = plan_baud(BM1397, PORT, 781_250, FT230X)  # divider 3
    assert plan.frame == write_all(0x18, "00006331")
    assert plan.chip_baud == 781_250
    assert plan.host_baud == round(24_000_000 / 31)  # 774 194: 0.9 % below the chip
    assert plan_baud(BM1397, PORT, 0, FT230X).frame is None


def test_bm1397_rates_are_every_divider_fastest_first() -> None:
    rates = [rate for _frame, rate in chip_rates(BM1397)]
    assert rates == [round(25_000_000 / (8 * (d + 1))) for d in range(32)]


# -- which bridge ---------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    device: str
    vid: int | None
    pid: int | None


def test_the_bridge_comes_from_the_option_else_the_usb_id() -> None:
    ports = [Listed("/dev/ttyS0", None, None), Listed("/dev/ttyUSB0", 0x0403, 0x6015)]
    assert usb_id_of("/dev/ttyUSB0", ports) == (0x0403, 0x6015)
    assert usb_id_of("/dev/ttyS0", ports) is None
    assert usb_id_of("/dev/pts/4", ports) is None
    assert bridge_for(None, (0x0403, 0x6015)) is FT230X
    assert bridge_for(None, (0x10C4, 0xEA60)) is None  # CP210x: limits vary by part
    assert bridge_for("native", (0x0403, 0x6015)) is None
    assert bridge_for("ft230x", None) is FT230X
    assert bridge_named(None) is None


def test_bridge_option_is_validated() -> None:
    assert parse_options(PORT, {"bridge": "ft230x"}).bridge == "ft230x"
    assert parse_options(PORT, {}).bridge is None
    with pytest.raises(DriverError, match="option 'bridge' must be one of ft230x, ft232r, native"):
        parse_options(PORT, {"bridge": "ch340"})


def test_a_declared_bridge_refuses_the_rate_when_the_driver_is_made() -> None:
    options = {"bridge": "ft230x", "baud": 3_125_000}
    with pytest.raises(UnsupportedBaudError, match="cannot carry"):
        Bm1397Driver(DeviceSpec(port=PORT, chips=1, options=options))
    driver = Bm1397Driver(DeviceSpec(port=PORT, chips=1, options={"bridge": "ft230x"}))
    assert driver.target_baudrate == 1_500_000
    assert Bm1370Driver(DeviceSpec(port=PORT, chips=1)).target_baudrate == 1_000_000


def test_the_compac_f_example_gets_divider_1_and_the_ftdi_rate_beside_it() -> None:
    root = Path(__file__).resolve().parents[2]
    device = load_config(root / "configs" / "gekko-compac-f.toml", env={}).devices[0]
    driver = Bm1397Driver(device.to_spec())
    assert driver.target_baudrate == 1_500_000  # FTDI divisor 2; the chip runs 1 562 500
