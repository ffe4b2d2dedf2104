"""BIP310 version rolling: which header versions a job may be hashed with.

The pool grants a mask of version bits the miner may change; every other bit must stay
as the job says, and the submit carries only the changed bits. A version that strays
outside the mask cannot be described in a submit, so it is an error here rather than
being silently masked into a share the pool would reject.
"""

from __future__ import annotations

from stratum_client.errors import WorkError

__all__ = [
    "apply_version_bits",
    "increment_within_mask",
    "mask_space",
    "rolled_versions",
    "version_bits",
]

_U32 = 0xFFFFFFFF


def apply_version_bits(job_version: int, bits: int, mask: int) -> int:
    """Header version for submitted ``bits``: ``(job_version & ~mask) | (bits & mask)``."""
    _check_u32(job_version=job_version, version_bits=bits, mask=mask)
    if bits & ~mask:
        raise WorkError(f"version bits {bits:08x} fall outside the mask {mask:08x}")
    return (job_version & ~mask & _U32) | bits


def version_bits(job_version: int, rolled_version: int, mask: int) -> int:
    """The submit's version-bits field for a rolled header version: ``rolled & mask``.

    BIP310 pools rebuild the version as ``(job & ~mask) | (bits & mask)``, so the field
    carries the *values* of the mask bits. The often-quoted ``rolled ^ job_version`` is
    the same number only while the job version has no mask bit set (true for BIP320
    jobs such as 0x20000000 under 0x1fffe000). A rolled version that changes a bit outside
    the mask raises WorkError, because no submit could reproduce it.
    """
    _check_u32(job_version=job_version, version=rolled_version, mask=mask)
    if (rolled_version ^ job_version) & ~mask:
        raise WorkError(
            f"version {rolled_version:08x} changes bits of {job_version:08x} "
            f"outside the mask {mask:08x}"
        )
    return rolled_version & mask


def increment_within_mask(version: int, mask: int) -> int:
    """Add one at the mask's lowest set bit, carrying only through mask bits.

    Bits outside the mask never change. When all mask bits are set the rolled part wraps
    to zero; with a zero mask the version is returned unchanged.
    """
    _check_u32(version=version, mask=mask)
    rolled = ((version | ~mask) + 1) & mask
    return (version & ~mask & _U32) | rolled


def mask_space(mask: int) -> int:
    """How many distinct versions ``mask`` allows (``2 ** popcount(mask)``)."""
    _check_u32(mask=mask)
    return 1 << mask.bit_count()


def rolled_versions(version: int, mask: int, count: int) -> tuple[int, ...]:
    """``version`` and its next ``count − 1`` increments within ``mask``."""
    versions = [version]
    for _ in range(count - 1):
        versions.append(increment_within_mask(versions[-1], mask))
    return tuple(versions)


def _check_u32(**values: int) -> None:
    for name, value in values.items():
        if not 0 <= value <= _U32:
            raise WorkError(f"{name.replace('_', ' ')} {value} does not fit in 32 bits")
