"""The chip-independent driver contract between the daemon and one chain of chips.

The daemon never knows which chip it drives: it builds :class:`~stratum_client.work.job.Work`,
hands it to :meth:`AsicDriver.send_work` at the pace :attr:`AsicDriver.job_interval` asks
for, and consumes :class:`FoundNonce` records from :meth:`AsicDriver.next_nonce`. Every
nonce a driver yields has already been hash-checked against the chain's ticket difficulty
(so chip CRC escapes and corrupted bytes never reach the pool) and de-duplicated.

Lifecycle (an async context manager, reusable but not re-entrant)::

    async with driver:                 # start(): open link, enumerate, init, ramp
        await driver.send_work(work)
        found = await driver.next_nonce()
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Self

from stratum_client.work.job import Work

__all__ = [
    "AsicDriver",
    "ChainInfo",
    "ChipCounters",
    "DeviceSpec",
    "FoundNonce",
]


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


class AsicDriver(abc.ABC):
    """A chain of chips behind one serial link.

    Subclasses are registered under the ``stratum_client.drivers`` entry-point group and
    constructed with the :class:`DeviceSpec` of one ``[[devices]]`` table.
    """

    model: ClassVar[str]
    """Chip model name, e.g. ``"BM1366"``."""
    midstates: ClassVar[int] = 0
    """Midstates each work unit needs: 0 for full-header chips, 1 or 4 otherwise."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec

    @abc.abstractmethod
    async def start(self) -> ChainInfo:
        """Open the link, enumerate and initialise the chain, ramp to frequency."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop hashing and release the link."""

    @abc.abstractmethod
    async def set_frequency(self, mhz: float) -> float:
        """Ramp every chip to ``mhz``; returns the frequency the PLL actually reached."""

    @abc.abstractmethod
    async def set_version_mask(self, mask: int) -> None:
        """Restrict chip-side version rolling to ``mask`` (0 disables it)."""

    @abc.abstractmethod
    async def send_work(self, work: Work) -> None:
        """Queue one work unit on the chain, replacing the oldest slot."""

    @abc.abstractmethod
    async def flush_work(self) -> None:
        """Forget all work (clean_jobs): late nonces for it are dropped and counted."""

    @abc.abstractmethod
    async def next_nonce(self) -> FoundNonce:
        """Wait for the next verified, de-duplicated nonce."""

    def deliver_nonces(self, sink: Callable[[FoundNonce], None] | None) -> bool:
        """Optionally hand each later nonce straight to ``sink`` instead of queueing it.

        Saves the caller a loop step per nonce. A driver that supports it calls ``sink``
        from its receive task and returns True; :meth:`next_nonce` then only yields what
        was queued before, and still raises once the driver stops, so callers keep waiting
        on it to notice a failure. An exception from ``sink`` stops the driver. The default
        returns False: keep reading :meth:`next_nonce`. ``None`` goes back to queueing.
        """
        return False

    @property
    @abc.abstractmethod
    def job_interval(self) -> float:
        """Seconds between fresh work units that keep every chip busy."""

    @property
    @abc.abstractmethod
    def counters(self) -> list[ChipCounters]:
        """One counter set per chip, in chain order."""

    @property
    @abc.abstractmethod
    def frequency_mhz(self) -> float:
        """The frequency the chain currently runs at."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
