"""The fast baud rate a chain switches to, chosen from what the serial bridge can carry.

The chips' fastest rates (BM1397 3.125 Mbaud, BM1366/68/70 1 Mbaud) assume a host UART
that can follow them, as the ESP32's own UART on a Bitaxe does. A USB-serial bridge may
not. Linux's ``ftdi_sio`` refuses FT232R and FT-X parts anything above 3,000,000 baud
(it logs "baud rate too high" and runs the part at 9600 instead), so a BM1397 switched to
3.125 Mbaud behind the FT230X of a GekkoScience Compac F answers into a receiver that
cannot hear it. This module holds the bridges whose limits are known, keyed by USB
VID:PID, and the pure rule that turns (chip model, ``baud`` option, bridge) into the
register write for the chips and the rate for the host.

**How an FTDI part makes a rate** (FTDI application note AN232B-05, and ``ftdi_sio``'s
divisor code): the rate is 3 MHz divided by ``n + k/8``, where ``n ≥ 2``; the two
divisors below 2 the part accepts are 1 (3 Mbaud) and 1.5 (2 Mbaud). The kernel picks
the eighth-step divisor nearest the request. So the host asks for a rate the part makes
exactly, and the chip's own rate must lie within :data:`UART_TOLERANCE` of it: the
reference gekko driver runs the BM1397 at 1,562,500 baud (divider 1) with the FTDI at
1,500,000, a 4 % gap that 8N1 framing tolerates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from stratum_client.errors import DriverError

from . import frames, registers
from .chips import ChipModel
from .registers import POWER_UP_BAUD as INITIAL_BAUDRATE
from .registers import Reg, Send, SetHostBaud

__all__ = [
    "BRIDGES",
    "NATIVE",
    "UART_TOLERANCE",
    "BaudPlan",
    "Bridge",
    "UnsupportedBaudError",
    "bridge_for",
    "bridge_named",
    "chip_rates",
    "plan_baud",
    "silent_after_switch",
    "usb_id_of",
]

UART_TOLERANCE: Final = 0.045
"""Largest relative gap between the chip's rate and the host's that still frames bytes."""
REQUEST_TOLERANCE: Final = 0.05
"""How far a requested BM1397 rate may be from the nearest chip divider's rate."""
NATIVE: Final = "native"
"""``bridge`` option value for a UART that follows the chip exactly (no USB bridge)."""

_FTDI_EIGHTHS_CLOCK: Final = 24_000_000
"""3 MHz × 8: an FTDI rate is this over the divisor counted in eighths."""
_FTDI_SMALL_DIVISORS: Final = (8, 12)
"""Divisors below 2 (in eighths) the part accepts: 1 → 3 Mbaud and 1.5 → 2 Mbaud."""
_FTDI_MIN_DIVISOR: Final = 16
_FTDI_MAX_DIVISOR: Final = (1 << 17) - 1
_LISTED_RATES: Final = 6


class UnsupportedBaudError(DriverError):
    """The chips' rate cannot be carried by the serial bridge in front of them."""


@dataclass(frozen=True, slots=True)
class Bridge:
    """A USB-serial bridge whose rates are known: an FTDI part with the 3 MHz generator."""

    key: str
    """The ``bridge`` option value naming it, e.g. ``"ft230x"``."""
    name: str
    usb_ids: tuple[tuple[int, int], ...]
    max_baud: int
    """Fastest rate its UART runs at (and the kernel driver accepts)."""

    @property
    def label(self) -> str:
        ids = ", ".join(f"{vid:04x}:{pid:04x}" for vid, pid in self.usb_ids)
        return f"{self.name} bridge (USB {ids})"

    def generated_rate(self, requested: int) -> float | None:
        """What the part actually runs at when the host asks for ``requested``.

        Above :attr:`max_baud` the kernel driver falls back to 9600; a divisor between 1
        and 2 other than 1.5 is not one the part makes (``None``: nothing gets through).
        """
        if requested <= 0:
            return None  # B0: the line is hung up
        if requested > self.max_baud:
            requested = 9600
        eighths = min(round(_FTDI_EIGHTHS_CLOCK / requested), _FTDI_MAX_DIVISOR)
        if eighths < _FTDI_MIN_DIVISOR and eighths not in _FTDI_SMALL_DIVISORS:
            return None
        return _FTDI_EIGHTHS_CLOCK / eighths

    def host_baud(self, chip_baud: int) -> int | None:
        """The rate to ask the bridge for to talk to chips at ``chip_baud`` (None: cannot)."""
        if chip_baud > self.max_baud:
            return None
        nearest = round(_FTDI_EIGHTHS_CLOCK / chip_baud)
        candidates = [*_FTDI_SMALL_DIVISORS, max(nearest, _FTDI_MIN_DIVISOR)]
        rates = [_FTDI_EIGHTHS_CLOCK / e for e in candidates if e <= _FTDI_MAX_DIVISOR]
        best = min(rates, key=lambda rate: abs(rate - chip_baud))
        return round(best) if _within(best, chip_baud) else None

    def carries(self, chip_baud: int, host_requested: int) -> bool:
        """Whether bytes survive between chips at ``chip_baud`` and a host asking this rate."""
        actual = self.generated_rate(host_requested)
        return chip_baud <= self.max_baud and actual is not None and _within(actual, chip_baud)


def _within(rate: float, chip_baud: int) -> bool:
    return abs(rate - chip_baud) <= chip_baud * UART_TOLERANCE


BRIDGES: Final[dict[str, Bridge]] = {
    bridge.key: bridge
    for bridge in (
        # FT-X series (FT230X/FT231X/FT234X): GekkoScience Compac F and similar sticks.
        Bridge("ft230x", "FTDI FT230X", ((0x0403, 0x6015),), 3_000_000),
        Bridge("ft232r", "FTDI FT232R", ((0x0403, 0x6001),), 3_000_000),
    )
}
"""Bridges whose rate limits are known, by ``bridge`` option value."""


class ListedPort(Protocol):
    """What the port listing gives per port (``probe.PortInfo`` has these)."""

    @property
    def device(self) -> str: ...
    @property
    def vid(self) -> int | None: ...
    @property
    def pid(self) -> int | None: ...


def usb_id_of(device: str, ports: Iterable[ListedPort]) -> tuple[int, int] | None:
    """The USB VID:PID the port listing gives for ``device`` (a resolved path), if any."""
    for port in ports:
        if port.device == device and port.vid is not None and port.pid is not None:
            return port.vid, port.pid
    return None


def bridge_named(option: str | None) -> Bridge | None:
    """The bridge a ``bridge`` option names (``None`` for unset or ``"native"``)."""
    return None if option in (None, NATIVE) else BRIDGES[str(option)]


def bridge_for(option: str | None, usb_id: tuple[int, int] | None) -> Bridge | None:
    """The bridge in front of a port: the ``bridge`` option if set, else by USB id."""
    if option is not None:
        return bridge_named(option)
    return next((b for b in BRIDGES.values() if usb_id in b.usb_ids), None)


@dataclass(frozen=True, slots=True)
class BaudPlan:
    """The chips' fast-baud register write and the rates on both ends of the line."""

    frame: bytes | None
    """Register write that switches the chips (``None``: they stay at 115 200)."""
    chip_baud: int
    host_baud: int
    bridge: Bridge | None


def chip_rates(model: ChipModel) -> list[tuple[bytes, int]]:
    """Every fast rate the model can be switched to, fastest first, with its frame."""
    send, host = registers.max_baud_steps(model)
    if not (isinstance(send, Send) and isinstance(host, SetHostBaud)):
        raise DriverError(f"{model.name}: the codec's baud switch has an unknown layout")
    if model.full_header:
        return [(send.frame, host.baud)]
    values = (bytes((0, 0, 0x60 | divider, 0x31)) for divider in range(32))
    return [
        (frames.write_register(Reg.MISC_CONTROL, v), registers.misc_control_baud(v)) for v in values
    ]


def _chip_plan(model: ChipModel, port: str, requested: int | None) -> tuple[bytes, int]:
    """The register write and chip rate for a requested rate (None: the model's fastest)."""
    rates = chip_rates(model)
    if requested is None:
        return rates[0]
    frame, rate = min(rates, key=lambda fr: abs(fr[1] - requested))
    if rate == requested or (
        not model.full_header and abs(rate - requested) <= requested * REQUEST_TOLERANCE
    ):
        return frame, rate
    raise DriverError(
        f"{port}: option 'baud' = {requested} is not a rate the {model.name} can be set to "
        f"(use 0 to stay at {INITIAL_BAUDRATE}, or {rates[0][1]})"
    )


def plan_baud(
    model: ChipModel, port: str, requested: int | None, bridge: Bridge | None
) -> BaudPlan:
    """Choose the fast rate: the request, else the fastest the bridge carries.

    A request the bridge cannot carry is an :class:`UnsupportedBaudError` naming the
    port, the bridge and the rates it can do; without a known bridge the host follows
    the chip's exact rate, as a native UART does.
    """
    if requested in (0, INITIAL_BAUDRATE):
        return BaudPlan(None, INITIAL_BAUDRATE, INITIAL_BAUDRATE, bridge)
    if bridge is None:
        frame, rate = _chip_plan(model, port, requested)
        return BaudPlan(frame, rate, rate, None)
    usable = [(f, r, h) for f, r in chip_rates(model) if (h := bridge.host_baud(r)) is not None]
    if requested is None:
        if not usable:
            return BaudPlan(None, INITIAL_BAUDRATE, INITIAL_BAUDRATE, bridge)
        frame, rate, host = usable[0]
        return BaudPlan(frame, rate, host, bridge)
    frame, rate = _chip_plan(model, port, requested)
    host_rate = bridge.host_baud(rate)
    if host_rate is None:
        raise UnsupportedBaudError(
            f"{port}: option 'baud' = {requested} needs the {model.name} at {rate} baud, "
            f"which the {bridge.label} cannot carry (it runs at most {bridge.max_baud}); "
            f"{model.name} rates it can do: {_rate_list(usable)}"
        )
    return BaudPlan(frame, rate, host_rate, bridge)


def _rate_list(usable: list[tuple[bytes, int, int]]) -> str:
    shown = [str(rate) for _frame, rate, _host in usable[:_LISTED_RATES]]
    more = ", …" if len(usable) > _LISTED_RATES else ""
    fastest = ", ".join(shown) + more if shown else "none"
    return f"{fastest} (or 0 to stay at {INITIAL_BAUDRATE})"


def silent_after_switch(port: str, plan: BaudPlan, answered: int, chips: int) -> str:
    """The error text when fewer chips answer a chip-id read after the baud switch."""
    where = plan.bridge.label if plan.bridge is not None else "the serial port"
    rates = f"chips at {plan.chip_baud} baud, host at {plan.host_baud}"
    return (
        f"{port}: {answered} of {chips} chip(s) answered after the switch to fast baud "
        f"({rates}): {where} probably cannot carry that rate. Set 'baud' in the device's "
        f"options to a rate it can, name the bridge with 'bridge' (known: "
        f"{', '.join(sorted(BRIDGES))}) so the driver chooses, or 0 to stay at "
        f"{INITIAL_BAUDRATE}"
    )
