"""How often a chain gets fresh work, so that its chips never run out of it.

Every job sent is a fresh search space: a new extranonce2, so a new merkle root, and
2³² nonces × the versions the chip may roll. Full-header chips (BM1366/68/70) roll up to
16 version bits themselves, 2⁴⁸ hashes per job, and the reference firmware's fixed
interval (2 s on the BM1366, 0.5 s on the BM1368/70, over nextpow2(chips)) only
refreshes work. Without rolling — the pool granted no mask, so register 0xA4 holds 0 —
a job is 2³² hashes: a BM1370 at 525 MHz (2040 small cores, about 1.07 TH/s) is through
them in 4 ms and then idles for the rest of a 500 ms interval.

So the interval is the time the chain needs to exhaust one job's space
(:func:`~.chips.full_scan_ms` with the versions the mask allows) times
:data:`SPACE_MARGIN`, never longer than the reference interval, and never shorter than
the line can carry: a job frame must take at most :data:`LINK_SHARE` of the host-to-chip
line, the rest being left for register reads and the baud-switch headroom. The BM1397
takes midstates rather than rolling, and its reference interval is already sized to its
4 × 2³² space, so it is unchanged.
"""

from __future__ import annotations

from typing import Final

from stratum_client.work.job import DEFAULT_VERSION_MASK

from . import chips, frames
from .chips import ChipModel

__all__ = [
    "LINK_SHARE",
    "SPACE_MARGIN",
    "job_interval_ms",
    "job_wire_ms",
    "rolled_versions",
    "space_ms",
]

SPACE_MARGIN: Final = 0.5
"""Send the next job when half of the current one's space is searched: an event-loop
timer on a loaded controller fires a millisecond or two late, and the chips must still
have work then (the gekko driver waits 0.3–0.5 of a full scan for the same reason)."""
LINK_SHARE: Final = 0.5
"""Most of the host-to-chip line that job frames may take."""
BITS_PER_BYTE: Final = 10
"""8N1 framing: start bit, eight data bits, stop bit."""


def rolled_versions(model: ChipModel, version_mask: int) -> int:
    """Versions a full-header chip searches per job under ``version_mask`` (1 = none)."""
    if not model.full_header:
        return model.midstate_slots
    return 1 << (version_mask & DEFAULT_VERSION_MASK).bit_count()


def space_ms(model: ChipModel, chip_count: int, mhz: float, version_mask: int) -> float:
    """Milliseconds the chain needs to search all of one job at ``mhz``."""
    versions = rolled_versions(model, version_mask)
    return chips.full_scan_ms(model, chip_count, mhz, version_space=versions)


def job_wire_ms(model: ChipModel, baud: int) -> float:
    """Milliseconds one job frame occupies the line at ``baud``."""
    data = frames.FULL_HEADER_JOB_SIZE if model.full_header else frames.MIDSTATE_JOB_SIZE
    frame_bytes = data + 6  # 55 AA, header, length, CRC-16
    return frame_bytes * BITS_PER_BYTE / baud * 1000.0


def job_interval_ms(
    model: ChipModel, chip_count: int, mhz: float, version_mask: int, baud: int
) -> float:
    """How often to send a job: often enough that the chips never idle, if the line allows.

    The reference interval when rolling leaves the chips more to do than it lasts (or
    on the BM1397); otherwise ``SPACE_MARGIN`` × the job's search time, bounded below by
    the frame's wire time over ``LINK_SHARE``.
    """
    reference = chips.job_interval_ms(model, chip_count, mhz)
    if not model.full_header:
        return reference
    busy = SPACE_MARGIN * space_ms(model, chip_count, mhz, version_mask)
    floor = job_wire_ms(model, baud) / LINK_SHARE
    return min(reference, max(busy, floor))
