"""The data a pool job and a unit of chip work carry.

These types are the contract between the Stratum session (which creates :class:`Job`),
the work builder (which turns a job into :class:`Work`) and the chip drivers (which
hash work and report nonces). They are immutable so they can be shared across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stratum_client.work.versionroll import DEFAULT_VERSION_BITS_FORM, VersionBitsForm

__all__ = ["DEFAULT_VERSION_MASK", "Job", "Midstate", "Work"]

DEFAULT_VERSION_MASK = 0x1FFFE000
"""BIP320 general-purpose version bits, the mask pools grant in practice."""


@dataclass(frozen=True, slots=True)
class Job:
    """A ``mining.notify`` job together with the session context in force when it arrived.

    Remembering extranonce1, the extranonce2 size, the difficulty and the version mask per
    job means a later ``set_difficulty`` or ``set_extranonce`` never silently changes how
    nonces for older work are checked or submitted.
    """

    job_id: str
    prevhash: bytes
    """32 bytes exactly as the notify hex decodes (each 4-byte word byte-swapped)."""
    coinb1: bytes
    coinb2: bytes
    merkle_branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool
    extranonce1: bytes
    extranonce2_size: int
    difficulty: float
    """Pool share difficulty in force for this job."""
    version_mask: int = 0
    """Negotiated BIP310 mask; 0 when the pool did not grant version rolling."""
    version_bits_form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM
    """How this pool wants the submit's version bits formed (its ``version_bits_form``)."""
    received_at: float = 0.0
    """Monotonic seconds when the notify arrived (for staleness and latency figures)."""


@dataclass(frozen=True, slots=True)
class Midstate:
    """SHA-256 state after the first 64 header bytes for one rolled version.

    ``state`` holds the eight state words H0..H7, each big-endian (the plain FIPS 180-4
    order); chip codecs reorder it as their wire format requires.
    """

    version: int
    state: bytes


@dataclass(frozen=True, slots=True)
class Work:
    """One unit of work for a chip: a job with a fixed extranonce2 (hence merkle root).

    ``version`` is the header version before any chip-side rolling. ``midstates`` is empty
    for full-header chips and holds 1 or 4 entries (for successive rolled versions) for
    midstate chips such as the BM1397.
    """

    job: Job
    extranonce2: bytes
    merkle_root: bytes
    version: int
    ntime: int
    midstates: tuple[Midstate, ...] = field(default=())

    @property
    def key(self) -> tuple[str, bytes]:
        """Identity of this work: the pool job id and extranonce2."""
        return (self.job.job_id, self.extranonce2)
