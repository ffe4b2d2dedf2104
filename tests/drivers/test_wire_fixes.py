"""Issue 16: init frames compared byte for byte with the reference firmware's."""

from __future__ import annotations

from pathlib import Path

from stratum_client.config import load_config
from stratum_client_bm13xx.chips import BM1368, BM1397
from stratum_client_bm13xx.options import baud_plan, parse_options
from stratum_client_bm13xx.registers import Delay, Send, init_steps

# Broadcast write of register 0x14 = 0x000000FF (ticket difficulty 256), as the
# reference BM1368 init sends it: 55 AA, header 0x51, length 9, chip 0, register, CRC5.
TICKET_256 = bytes.fromhex("55 AA 51 09 00 14 00 00 00 FF 08")
PLL_WRITE_PREFIX = bytes.fromhex("55 AA 51 09 00 08")


def test_bm1368_writes_the_ticket_mask_again_after_the_per_chip_block() -> None:
    steps = init_steps(BM1368, 2, ticket_diff=256)
    last_delay = max(i for i, s in enumerate(steps[:-1]) if isinstance(s, Delay) and s.ms == 500)
    after = steps[last_delay + 1]
    assert isinstance(after, Send)
    assert after.frame == TICKET_256
    nxt = steps[last_delay + 2]
    assert isinstance(nxt, Send)
    assert nxt.frame.startswith(PLL_WRITE_PREFIX)
    sends = [s.frame for s in steps if isinstance(s, Send)]
    assert sends.count(TICKET_256) == 2


FT230X_MAX_BAUD = 3_000_000  # Linux ftdi_sio's ceiling for FT-X parts (USB 0403:6015)


def test_compac_f_example_runs_the_bm1397_at_a_rate_its_ftdi_bridge_supports() -> None:
    root = Path(__file__).resolve().parents[2]
    device = load_config(root / "configs" / "gekko-compac-f.toml", env={}).devices[0]
    options = parse_options(device.port, device.options)
    frame, host = baud_plan(BM1397, device.port, options.baud)
    # Register 0x18 with UART divider 1: 25 MHz / (8 · 2) = 1 562 500 baud.
    assert frame == bytes.fromhex("55 AA 51 09 00 18 00 00 61 31 1C")
    assert host == 1_562_500
    assert host <= FT230X_MAX_BAUD
