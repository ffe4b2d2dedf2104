"""LM75-type temperature sensor (the PiAxe HAT's, at 0x48): register 0, 12 bits, 1/16 °C.

The temperature register is read as two bytes, big-endian; the top 12 bits are a
two's-complement count of 0.0625 °C.
"""

from __future__ import annotations

__all__ = ["ADDRESS", "TEMPERATURE_REGISTER", "decode_temperature", "encode_temperature"]

ADDRESS = 0x48
TEMPERATURE_REGISTER = 0x00


def decode_temperature(data: bytes) -> float:
    """°C from the 2-byte temperature register."""
    if len(data) != 2:
        raise ValueError(f"LM75 temperature reads are 2 bytes, got {len(data)}")
    return (int.from_bytes(data, "big", signed=True) >> 4) * 0.0625


def encode_temperature(celsius: float) -> bytes:
    """The register bytes for ``celsius`` (emulation), clamped to the 12-bit range."""
    count = max(-2048, min(2047, round(celsius / 0.0625)))
    return (count << 4).to_bytes(2, "big", signed=True)
