"""Find chip chains: list serial ports, and ask a port which BM13xx chips answer on it.

Probing sends one broadcast chip-id read at 115 200 baud (the rate chips power up with)
and collects the register replies. The reply size depends on the model (11 bytes, 9 on
the BM1397), which the prober does not know yet, so the byte stream is parsed at both
sizes; a reply counts only if its chip id names a known model whose replies have the
size it was parsed at. That second condition rejects the 1-in-32 frames of the wrong
size whose CRC-5 happens to pass.

:func:`collect_chip_ids` is also the enumeration step of the BM13xx driver, which passes
the one reply size its model uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from stratum_client.asic.transport import SerialLink
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.chips import MODELS, ChipModel, model_by_chip_id
from stratum_client_bm13xx.registers import Reg
from stratum_client_bm13xx.rx import ReplyParser

__all__ = [
    "ChipIdReply",
    "PortInfo",
    "ProbeResult",
    "collect_chip_ids",
    "list_ports",
    "miner_hint",
    "probe_chain",
]

FIRST_REPLY_TIMEOUT = 1.0
"""Seconds to wait for the first chip-id reply before deciding nobody is there."""
QUIET_GAP = 0.2
"""Seconds without a further reply that end the collection once one has arrived."""

_REPLY_SIZES = tuple(sorted({m.reply_size for m in MODELS.values()}, reverse=True))

_USB_HINTS: dict[tuple[int, int], str] = {
    (0x0403, 0x6015): "FTDI FT230X: used by GekkoScience sticks",
    (0x10C4, 0xEA60): "Silicon Labs CP210x: common USB-UART on miners",
    (0x10C4, 0xEA70): "Silicon Labs CP2105 dual UART: common on miners",
    (0x303A, 0x1001): "Espressif ESP32-S3 USB serial: possibly a Bitaxe",
}

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ChipIdReply:
    """One chip's answer to the broadcast chip-id read."""

    chip_id: int
    """Bytes 2..3 of the reply, e.g. ``0x1366``."""
    chip_address: int
    reply_size: int

    @property
    def model(self) -> ChipModel | None:
        """The known model with this chip id, or ``None``."""
        try:
            return model_by_chip_id(self.chip_id)
        except ValueError:
            return None

    @property
    def model_name(self) -> str:
        """The model's name, or ``unknown 0x….`` for an id no driver knows."""
        model = self.model
        return model.name if model is not None else f"unknown {self.chip_id:#06x}"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What answered on one port."""

    port: str
    chips: tuple[ChipIdReply, ...]

    @property
    def chip_count(self) -> int:
        return len(self.chips)

    @property
    def models(self) -> dict[str, int]:
        """Chip count per model name, in order of first appearance."""
        counts: dict[str, int] = {}
        for chip in self.chips:
            counts[chip.model_name] = counts.get(chip.model_name, 0) + 1
        return counts

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "port": self.port,
            "chip_count": self.chip_count,
            "models": self.models,
            "chips": [
                {
                    "model": c.model_name,
                    "chip_id": f"{c.chip_id:#06x}",
                    "address": c.chip_address,
                }
                for c in self.chips
            ],
        }


@dataclass(frozen=True, slots=True)
class PortInfo:
    """One serial port as the OS lists it, with a guess at whether it is a miner."""

    device: str
    description: str
    vid: int | None
    pid: int | None
    manufacturer: str | None
    product: str | None
    serial_number: str | None
    hint: str | None
    """Why this port looks like a miner, or ``None``."""

    @property
    def usb_id(self) -> str:
        """``VID:PID`` in hex, or an empty string for non-USB ports."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def likely_miner(self) -> bool:
        return self.hint is not None


def miner_hint(
    vid: int | None, pid: int | None, manufacturer: str | None, product: str | None
) -> str | None:
    """A short reason a USB port may lead to chips, or ``None`` when nothing suggests it."""
    names = f"{manufacturer or ''} {product or ''}".lower()
    if "gekko" in names:
        return "GekkoScience miner"
    if vid is None or pid is None:
        return None
    return _USB_HINTS.get((vid, pid))


def list_ports() -> list[PortInfo]:
    """Every serial port pyserial can see, sorted by device path."""
    from serial.tools import list_ports as pyserial_ports  # noqa: PLC0415 - only the CLI lists

    ports = []
    for p in pyserial_ports.comports():
        ports.append(
            PortInfo(
                device=str(p.device),
                description=str(p.description or ""),
                vid=p.vid,
                pid=p.pid,
                manufacturer=p.manufacturer,
                product=p.product,
                serial_number=p.serial_number,
                hint=miner_hint(p.vid, p.pid, p.manufacturer, p.product),
            )
        )
    return sorted(ports, key=lambda port: port.device)


def _chip_id_reply(frame: bytes, strict: bool) -> ChipIdReply | None:
    """The chip-id reply in a CRC-valid frame, or ``None`` for anything else.

    ``strict`` (several sizes tried) also demands a known model with this reply size.
    """
    if frame[-1] & frames.NONCE_FLAG:
        return None
    fields = frames.unpack_register_reply(frame)
    if fields.register != Reg.CHIP_ID:
        return None
    reply = ChipIdReply(fields.value >> 16, fields.chip_address, len(frame))
    if strict and (reply.model is None or reply.model.reply_size != len(frame)):
        return None
    return reply


async def collect_chip_ids(
    link: SerialLink,
    *,
    reply_sizes: Iterable[int] = _REPLY_SIZES,
    first_timeout: float = FIRST_REPLY_TIMEOUT,
    quiet: float = QUIET_GAP,
) -> list[ChipIdReply]:
    """Read chip-id replies until ``quiet`` seconds pass without one.

    The caller has already sent the read. Waits up to ``first_timeout`` for the first
    reply; an empty list means nothing answered.
    """
    sizes = tuple(reply_sizes)
    strict = len(sizes) > 1
    parsers = [ReplyParser(size, bytes) for size in sizes]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_timeout
    found: list[ChipIdReply] = []
    while (remaining := deadline - loop.time()) > 0:
        data = await link.read(4096, timeout=remaining)
        batch = [p.feed(data) if data else p.flush() for p in parsers]
        replies = [r for raw in batch for f in raw if (r := _chip_id_reply(f, strict))]
        if replies:
            found += replies
            deadline = loop.time() + quiet
    for parser in parsers:
        found += [r for f in parser.flush() if (r := _chip_id_reply(f, strict))]
    return found


async def probe_chain(
    port: str, *, first_timeout: float = FIRST_REPLY_TIMEOUT, quiet: float = QUIET_GAP
) -> ProbeResult:
    """Open ``port`` at 115 200 baud, broadcast a chip-id read and report who answered.

    Chips already switched to a fast baud rate by a running miner do not answer; power
    cycle them first.
    """
    async with SerialLink(port) as link:
        await link.write(frames.read_register(Reg.CHIP_ID))
        chips = await collect_chip_ids(link, first_timeout=first_timeout, quiet=quiet)
    _log.debug("probe done", port=port, chips=len(chips))
    return ProbeResult(port, tuple(chips))
