"""Finding chains: the serial ports the OS lists, and what a driver found answering on one.

Which chips answer on a port is a driver's question (:meth:`AsicDriver.detect`); the
registry asks every installed driver (:func:`stratum_client.asic.registry.detect_chain`).
This module holds the driver-independent records (pure data; the port listing itself,
:func:`stratum_client.asic.transport.list_ports`, asks the OS).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DetectedChip", "PortInfo", "ProbeResult", "miner_hint"]

_USB_HINTS: dict[tuple[int, int], str] = {
    (0x0403, 0x6015): "FTDI FT230X: used by GekkoScience sticks",
    (0x10C4, 0xEA60): "Silicon Labs CP210x: common USB-UART on miners",
    (0x10C4, 0xEA70): "Silicon Labs CP2105 dual UART: common on miners",
    (0x303A, 0x1001): "Espressif ESP32-S3 USB serial: possibly a Bitaxe",
}


@dataclass(frozen=True, slots=True)
class DetectedChip:
    """One chip that answered a driver's identification request."""

    model: str
    """The model's name, or ``unknown 0x….`` for an id the driver does not know."""
    chip_id: int
    address: int


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What answered on one port."""

    port: str
    chips: tuple[DetectedChip, ...]

    @property
    def chip_count(self) -> int:
        return len(self.chips)

    @property
    def models(self) -> dict[str, int]:
        """Chip count per model name, in order of first appearance."""
        counts: dict[str, int] = {}
        for chip in self.chips:
            counts[chip.model] = counts.get(chip.model, 0) + 1
        return counts

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "port": self.port,
            "chip_count": self.chip_count,
            "models": self.models,
            "chips": [
                {"model": c.model, "chip_id": f"{c.chip_id:#06x}", "address": c.address}
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
