"""Register addresses and values, and chip initialisation expressed as data.

Init sequences are lists of :data:`Step` records (frames to send, pauses, "count the
chips now", "switch the host UART now") that a driver replays in order, so the exact
bytes of a bring-up can be read, diffed and tested without a serial port.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from stratum_client.work.job import DEFAULT_VERSION_MASK

from . import frames
from .chips import ChipModel, chip_addresses, next_pow2
from .pll import pll_for_frequency, ramp_plan

__all__ = [
    "DEFAULT_TICKET_DIFFICULTY",
    "FAST_UART_1M",
    "MISC_CONTROL_DEFAULT_BAUD",
    "MISC_CONTROL_MAX_BAUD",
    "CountChips",
    "Delay",
    "Reg",
    "Send",
    "SetHostBaud",
    "Step",
    "baud_after_write",
    "frequency_steps",
    "hash_counting_number",
    "init_steps",
    "max_baud_steps",
    "misc_control_baud",
    "ramp_steps",
    "ticket_difficulty",
    "ticket_mask",
    "ticket_mask_value",
    "ticket_target",
    "version_mask_value",
]


class Reg(enum.IntEnum):
    """Register addresses (some exist only on some models; see the names)."""

    CHIP_ID = 0x00
    HASHRATE_BM1397 = 0x04
    PLL0 = 0x08
    HASH_COUNTING_NUMBER = 0x10
    TICKET_MASK = 0x14
    MISC_CONTROL = 0x18
    ORDERED_CLOCK_ENABLE = 0x20
    FAST_UART = 0x28
    REG_2C = 0x2C
    CORE_REGISTER_CONTROL = 0x3C
    ERROR_COUNT = 0x4C
    ANALOG_MUX = 0x54
    IO_DRIVE_STRENGTH = 0x58
    PLL3 = 0x68
    PLL0_DIVIDER = 0x70
    CLOCK_ORDER_CONTROL_0 = 0x80
    CLOCK_ORDER_CONTROL_1 = 0x84
    DOMAIN_0_COUNT = 0x88
    DOMAIN_1_COUNT = 0x89
    DOMAIN_2_COUNT = 0x8A
    DOMAIN_3_COUNT = 0x8B
    TOTAL_COUNT = 0x8C
    VERSION_MASK = 0xA4
    REG_A8 = 0xA8
    REG_B9 = 0xB9


UART_CLOCK_HZ = 25_000_000
POWER_UP_BAUD = 115_200
DEFAULT_TICKET_DIFFICULTY = 256
FAST_UART_1M = bytes.fromhex("11300200")
"""Register 0x28 value that puts BM1366/68/70 UARTs at 1 Mbaud (an opaque known value)."""
MISC_CONTROL_DEFAULT_BAUD = bytes.fromhex("00007a31")
"""Register 0x18 value with UART divider 26: 25 MHz / 216 ≈ 115 741 baud."""
MISC_CONTROL_MAX_BAUD = bytes.fromhex("00006031")
"""Register 0x18 value with UART divider 0: 3.125 Mbaud (BM1397)."""


# --------------------------------------------------------------------------------------
# ticket mask, version mask, baud, hash counting number
# --------------------------------------------------------------------------------------


def _ticket_bits(difficulty: float) -> int:
    """k such that the chip's ticket difficulty is 2**k: floor(log2(ceil(difficulty)))."""
    if not math.isfinite(difficulty):
        raise ValueError(f"ticket difficulty must be finite, got {difficulty}")
    return min(max(math.ceil(difficulty), 1).bit_length() - 1, 32)


def ticket_mask_value(difficulty: float) -> int:
    """The mask ``2**floor(log2(ceil(difficulty))) − 1`` (0 below difficulty 2)."""
    return (1 << _ticket_bits(difficulty)) - 1


def ticket_difficulty(difficulty: float) -> int:
    """The power of two the chip actually uses for a requested ticket difficulty.

    Driver and emulator must both use this (or :func:`ticket_target`), never the
    requested value: asking for 300 gives 256.
    """
    return 1 << _ticket_bits(difficulty)


def ticket_target(difficulty: float) -> int:
    """Exclusive bound on ``int.from_bytes(hash, "little")`` for a nonce the chip reports.

    A chip with ticket difficulty 2**k reports a nonce when the top 32 + k bits of the
    hash (as a little-endian 256-bit number) are zero. Such a hash has share difficulty
    ≥ 2**k · 65535/65536, marginally below 2**k, so a hash check must compare against
    this target, not against the difficulty, or it would flag genuine nonces.
    """
    return 1 << (224 - _ticket_bits(difficulty))


def ticket_mask(difficulty: float) -> bytes:
    """Register 0x14 value: the mask big-endian with each byte's bits reversed."""
    raw = ticket_mask_value(difficulty).to_bytes(4, "big")
    return bytes(_reverse_bits(b) for b in raw)


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def version_mask_value(mask: int) -> bytes:
    """Register 0xA4 value: ``90 00`` then the 16 rollable bits (``mask >> 13``)."""
    if mask & ~DEFAULT_VERSION_MASK:
        raise ValueError(f"chips can only roll version bits 13..28, mask {mask:#010x}")
    return b"\x90\x00" + (mask >> 13).to_bytes(2, "big")


def misc_control_baud(value: bytes) -> int:
    """Baud rate selected by a register 0x18 value: 25 MHz / ((div + 1) · 8).

    Assumption, fitted to the two known values (``7A`` → div 26, ``60`` → div 0): the
    divider is the low five bits of the third value byte; its top three bits (``0x60``
    in both) are other controls. Sources quote the default as 115 749 baud; the formula
    gives 115 741.
    """
    divider = value[2] & 0x1F
    return round(UART_CLOCK_HZ / ((divider + 1) * 8))


def baud_after_write(model: ChipModel, register: int, value: bytes) -> int | None:
    """The chip baud rate a register write selects, or ``None`` if it does not set one.

    BM1366/68/70 reach 1 Mbaud only through register 0x28 = :data:`FAST_UART_1M`; their
    init also writes 0x18 with values whose layout is unknown, so there only the
    documented default-baud value is interpreted. On the BM1397 every 0x18 write sets
    the divider.
    """
    if register == Reg.FAST_UART and model.full_header and value == FAST_UART_1M:
        return 1_000_000
    if register == Reg.MISC_CONTROL and (
        not model.full_header or value == MISC_CONTROL_DEFAULT_BAUD
    ):
        return misc_control_baud(value)
    return None


def hash_counting_number(model: ChipModel, chips: int, mhz: float, fraction: float = 1.0) -> int:
    """Register 0x10 value: ``(2³²/nextpow2(cores)/nextpow2(chips))·25/f·½ − correction``.

    An empirical per-core nonce-range limit (its exact semantics are not documented);
    ``fraction`` scales it, as the reference firmware's "nonce percent" does.
    """
    if model.hcn_correction is None:
        raise ValueError(f"{model.name} has no hash counting number register")
    per_core = 2**32 / next_pow2(model.cores) / next_pow2(chips)
    hcn = fraction * (per_core * 25 / mhz * 0.5 - model.hcn_correction)
    return int(min(max(hcn, 0.0), 0xFFFFFFFF))


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write these bytes to the chain."""

    frame: bytes
    note: str = ""


@dataclass(frozen=True, slots=True)
class Delay:
    """Pause before the next step."""

    ms: float


@dataclass(frozen=True, slots=True)
class CountChips:
    """Read chip-id replies (one per chip) until ``timeout_ms`` passes without one.

    The driver must find ``expected`` chips whose reply carries the model's chip id, or
    fail the init (ChipCountError).
    """

    expected: int
    timeout_ms: float = 1000.0


@dataclass(frozen=True, slots=True)
class SetHostBaud:
    """Switch the host UART to ``baud`` and discard whatever is buffered."""

    baud: int


Step = Send | Delay | CountChips | SetHostBaud


def _all(register: Reg, value: str | bytes, note: str = "") -> Send:
    raw = bytes.fromhex(value) if isinstance(value, str) else value
    return Send(frames.write_register(register, raw), note or register.name)


def _one(address: int, register: Reg, value: str, note: str = "") -> Send:
    frame = frames.write_register(register, bytes.fromhex(value), address)
    return Send(frame, note or f"{register.name} @{address:#04x}")


def frequency_steps(model: ChipModel, mhz: float) -> list[Step]:
    """Program one PLL frequency on every chip.

    The BM1397 wants register 0x70 = ``0F 0F 0F 00`` before the PLL write, and both
    sent twice with 10 ms pauses; the other models take a single write.
    """
    pll = _all(Reg.PLL0, pll_for_frequency(model, mhz).register, f"PLL0 {mhz:g} MHz")
    if model.full_header:
        return [pll]
    divider = _all(Reg.PLL0_DIVIDER, "0f0f0f00")
    steps: list[Step] = []
    for send in (divider, divider, pll, pll):
        steps += [Delay(10), send]
    return [*steps, Delay(10)]


def ramp_steps(
    model: ChipModel, start_mhz: float, target_mhz: float, pause_ms: float = 100.0
) -> list[Step]:
    """Move the chain from ``start_mhz`` to ``target_mhz`` in 6.25 MHz steps."""
    steps: list[Step] = []
    for mhz in ramp_plan(start_mhz, target_mhz):
        steps += [*frequency_steps(model, mhz), Delay(pause_ms)]
    return steps


def max_baud_steps(model: ChipModel) -> list[Step]:
    """Switch chips and then the host to the model's fastest baud rate."""
    if model.full_header:
        return [_all(Reg.FAST_UART, FAST_UART_1M, "fast UART 1 Mbaud"), SetHostBaud(1_000_000)]
    baud = misc_control_baud(MISC_CONTROL_MAX_BAUD)
    return [_all(Reg.MISC_CONTROL, MISC_CONTROL_MAX_BAUD, "UART 3.125 Mbaud"), SetHostBaud(baud)]


def init_steps(
    model: ChipModel,
    chip_count: int,
    *,
    mhz: float | None = None,
    ticket_diff: float = DEFAULT_TICKET_DIFFICULTY,
    version_mask: int = DEFAULT_VERSION_MASK,
    start_mhz: float = 50.0,
    max_baud: bool = True,
) -> list[Step]:
    """Bring a chain from power-up (115 200 baud, unaddressed) to hashing at ``mhz``.

    ``mhz`` defaults to the model's default frequency; the ramp assumes the chips start
    at ``start_mhz``. Follows the reference firmware's sequences per model.
    """
    target = model.default_mhz if mhz is None else mhz
    body = _BODIES[model.name](chip_count, ticket_diff, version_mask)
    tail = ramp_steps(model, start_mhz, target)
    if model.hcn_correction is not None:
        hcn = hash_counting_number(model, chip_count, target).to_bytes(4, "big")
        tail.append(_all(Reg.HASH_COUNTING_NUMBER, hcn))
    if model.name in _VERSION_MASK_AFTER_HCN:
        tail.append(_all(Reg.VERSION_MASK, version_mask_value(version_mask)))
    if max_baud:
        tail += max_baud_steps(model)
    return body + tail


def _enumerate(chip_count: int) -> list[Step]:
    return [
        Send(frames.read_register(Reg.CHIP_ID), "read chip id (all)"),
        CountChips(chip_count),
    ]


def _address(chip_count: int) -> list[Step]:
    sends = [
        Send(frames.set_address(a), f"set address {a:#04x}") for a in chip_addresses(chip_count)
    ]
    return [Send(frames.chain_inactive(), "chain inactive"), *sends]


def _version(mask: int, times: int) -> list[Step]:
    return [_all(Reg.VERSION_MASK, version_mask_value(mask))] * times


def _per_chip(chip_count: int, core_writes: tuple[str, str], pause_ms: float = 0) -> list[Step]:
    steps: list[Step] = []
    for a in chip_addresses(chip_count):
        steps += [
            _one(a, Reg.REG_A8, "000701f0"),
            _one(a, Reg.MISC_CONTROL, "f000c100"),
            _one(a, Reg.CORE_REGISTER_CONTROL, core_writes[0]),
            _one(a, Reg.CORE_REGISTER_CONTROL, core_writes[1]),
            _one(a, Reg.CORE_REGISTER_CONTROL, "800082aa"),
        ]
        if pause_ms:
            steps.append(Delay(pause_ms))
    return steps


def _bm1366_body(chip_count: int, ticket_diff: float, mask: int) -> list[Step]:
    core = ("80008540", "80008020")
    return [
        *_version(mask, 3),
        *_enumerate(chip_count),
        _all(Reg.REG_A8, "00070000"),
        _all(Reg.MISC_CONTROL, "ff0fc100"),
        *_address(chip_count),
        _all(Reg.CORE_REGISTER_CONTROL, core[0]),
        _all(Reg.CORE_REGISTER_CONTROL, core[1]),
        _all(Reg.TICKET_MASK, ticket_mask(ticket_diff)),
        _all(Reg.ANALOG_MUX, "00000003"),
        _all(Reg.IO_DRIVE_STRENGTH, "02111111"),
        _one(0, Reg.REG_2C, "007c0003"),
        *_per_chip(chip_count, core),
    ]


def _bm1368_body(chip_count: int, ticket_diff: float, mask: int) -> list[Step]:
    core = ("80008b00", "80008018")
    return [
        *_version(mask, 4),
        *_enumerate(chip_count),
        Send(frames.chain_inactive(), "chain inactive"),
        _all(Reg.REG_A8, "00070000"),
        _all(Reg.MISC_CONTROL, "ff0fc100"),
        _all(Reg.CORE_REGISTER_CONTROL, core[0]),
        _all(Reg.CORE_REGISTER_CONTROL, core[1]),
        _all(Reg.TICKET_MASK, ticket_mask(ticket_diff)),
        _all(Reg.ANALOG_MUX, "00000003"),
        _all(Reg.IO_DRIVE_STRENGTH, "02111111"),
        *_address(chip_count)[1:],
        *_per_chip(chip_count, core, pause_ms=500),
        # The reference writes the ticket mask again once every chip is set up.
        _all(Reg.TICKET_MASK, ticket_mask(ticket_diff), "ticket mask again"),
    ]


def _bm1370_body(chip_count: int, ticket_diff: float, mask: int) -> list[Step]:
    core = ("80008b00", "8000800c")
    return [
        *_version(mask, 3),
        *_enumerate(chip_count),
        *_version(mask, 1),
        _all(Reg.REG_A8, "00070000"),
        _all(Reg.MISC_CONTROL, "f000c100"),
        *_address(chip_count),
        _all(Reg.CORE_REGISTER_CONTROL, core[0]),
        _all(Reg.CORE_REGISTER_CONTROL, core[1]),
        _all(Reg.TICKET_MASK, ticket_mask(ticket_diff)),
        _all(Reg.IO_DRIVE_STRENGTH, "00011111"),
        *_per_chip(chip_count, core),
        _all(Reg.REG_B9, "00004480"),
        _all(Reg.ANALOG_MUX, "00000002"),
        _all(Reg.REG_B9, "00004480"),
        _all(Reg.CORE_REGISTER_CONTROL, "80008dee"),
    ]


def _bm1397_body(chip_count: int, ticket_diff: float, _mask: int) -> list[Step]:
    return [
        *_enumerate(chip_count),
        Delay(20),
        *_address(chip_count),
        _all(Reg.CLOCK_ORDER_CONTROL_0, "00000000"),
        _all(Reg.CLOCK_ORDER_CONTROL_1, "00000000"),
        _all(Reg.ORDERED_CLOCK_ENABLE, "00000001"),
        _all(Reg.CORE_REGISTER_CONTROL, "80008074"),
        _all(Reg.TICKET_MASK, ticket_mask(ticket_diff)),
        _all(Reg.PLL3, "c0700111"),
        _all(Reg.FAST_UART, "0600000f"),
        _all(Reg.MISC_CONTROL, MISC_CONTROL_DEFAULT_BAUD, "UART default baud"),
    ]


_BODIES = {
    "BM1366": _bm1366_body,
    "BM1368": _bm1368_body,
    "BM1370": _bm1370_body,
    "BM1397": _bm1397_body,
}
"""Everything before the frequency ramp, per model."""

_VERSION_MASK_AFTER_HCN = frozenset({"BM1366", "BM1368"})
"""Models whose reference init rewrites the version mask once hashing is configured."""
