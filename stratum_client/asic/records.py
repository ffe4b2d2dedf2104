"""The plain records that cross the driver boundary: config in, chain and nonces out.

Re-exported by :mod:`stratum_client.asic.base`; import them from there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from stratum_client.work.job import Work

__all__ = [
    "ChainInfo",
    "ChipCounters",
    "DeviceSpec",
    "DriverState",
    "FoundNonce",
]


class DriverState(enum.StrEnum):
    """Where a driver is in its life; ``reconnecting`` means the link vanished."""

    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the config file says about one chain (one ``[[devices]]`` table)."""

    port: str
    """Device path (``/dev/ttyACM0``), pty symlink, or pyserial URL (``socket://…``)."""
    chips: int
    """Expected chip count; enumeration finding another number is an error."""
    frequency_mhz: float | None = None
    """Target frequency; ``None`` means the model's default."""
    ticket_difficulty: float = 256.0
    """Chip-side difficulty: chips report only nonces at least this hard."""
    difficulty_scale: float = 1.0
    """Emulator knob: the chain reports nonces at ``ticket_difficulty × scale``.

    Real chips use 1.0. An emulated chain cannot hash at chip speed, so it is told a
    fractional scale and the driver is told the same one; every nonce is still checked
    against the scaled difficulty, so nothing false passes.
    """
    options: Mapping[str, object] = field(default_factory=dict)
    """Driver-specific options from the config table, validated by the driver."""

    @property
    def effective_ticket_difficulty(self) -> float:
        """The difficulty every reported nonce must meet."""
        return self.ticket_difficulty * self.difficulty_scale


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """What enumeration found on the link."""

    model: str
    chip_count: int
    chip_ids: tuple[int, ...]
    addresses: tuple[int, ...]


@dataclass(slots=True)
class ChipCounters:
    """Per-chip health counters, read by stats and telemetry."""

    nonces: int = 0
    hw_errors: int = 0
    """Nonces whose hash does not meet the ticket difficulty (or maps to no work)."""
    duplicates: int = 0
    last_nonce_at: float | None = None


@dataclass(frozen=True, slots=True)
class FoundNonce:
    """A hash-checked nonce mapped back to the work, chip and version it was found for."""

    work: Work
    nonce: int
    version: int
    """Full header version the nonce was found under (after any rolling)."""
    chip: int
    core: int
    hash: bytes
    """Double SHA-256 of the 80-byte header, raw byte order."""
    difficulty: float
    """Share difficulty of ``hash``."""
    received_at: float
    """Monotonic seconds when the reply was parsed."""
