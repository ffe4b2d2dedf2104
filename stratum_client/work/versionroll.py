"""BIP310 version rolling: which header versions a job may be hashed with.

The pool grants a mask of version bits the miner may change; every other bit must stay
as the job says, and the submit's sixth field tells the pool which version was hashed. A
version that strays outside the mask cannot be described in a submit, so it is an error
here rather than being silently masked into a share the pool would reject.

Pools do not agree on how that field rebuilds the version (see docs/pools.md):
public-pool XORs it into the job version, ckpool and DATUM OR it in, and BIP310's text
(followed by miningcore and the SRI translator) replaces the mask bits with it. The two
submit forms below differ only when the job version has a bit inside the mask, as
Bitcoin Core's regtest template 0x30000000 does (bit 28 under 0x1fffe000); then no single
value satisfies both an XOR pool and a replace pool, so the form is a per-pool choice.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from stratum_client.errors import WorkError

__all__ = [
    "DEFAULT_VERSION_BITS_FORM",
    "VERSION_BITS_FORMS",
    "VersionBitsForm",
    "apply_version_bits",
    "increment_within_mask",
    "mask_space",
    "rolled_versions",
    "version_bits",
]

_U32 = 0xFFFFFFFF

VersionBitsForm = Literal["xor", "replace"]
"""How the submit's version-bits field is formed from the rolled version.

``xor``: ``rolled ^ job_version``, what ESP-Miner sends. An XOR pool (public-pool) gets
the rolled version back exactly; an OR pool (ckpool, DATUM) does too whenever the rolled
version keeps every bit the job version has, which chip-side rolling (the chip ORs its
bits in) and :class:`~stratum_client.work.builder.JobBuilder`'s midstates guarantee.

``replace``: ``rolled & mask``, the values of the mask bits, for pools that rebuild with
BIP310's ``(job & ~mask) | (bits & mask)``; OR pools take it too.
"""
VERSION_BITS_FORMS: Final[tuple[VersionBitsForm, ...]] = get_args(VersionBitsForm)
DEFAULT_VERSION_BITS_FORM: Final[VersionBitsForm] = "xor"
"""The form the pools Bitaxe owners mine on accept (public-pool, ckpool)."""


def apply_version_bits(
    job_version: int, bits: int, mask: int, form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM
) -> int:
    """The header version a pool rebuilds from submitted ``bits`` sent in ``form``.

    The inverse of :func:`version_bits`: ``job ^ bits`` for ``xor``,
    ``(job & ~mask) | bits`` for ``replace``.
    """
    _check_u32(job_version=job_version, version_bits=bits, mask=mask)
    if bits & ~mask:
        raise WorkError(f"version bits {bits:08x} fall outside the mask {mask:08x}")
    if _is_xor(form):
        return job_version ^ bits
    return (job_version & ~mask & _U32) | bits


def version_bits(
    job_version: int,
    rolled_version: int,
    mask: int,
    form: VersionBitsForm = DEFAULT_VERSION_BITS_FORM,
) -> int:
    """The submit's version-bits field for a rolled header version, in ``form``.

    ``xor`` sends the bits that changed, ``replace`` the values of the mask bits (see
    :data:`VersionBitsForm`). A rolled version that changes a bit outside the mask raises
    WorkError, because no submit could reproduce it.
    """
    _check_u32(job_version=job_version, version=rolled_version, mask=mask)
    if (rolled_version ^ job_version) & ~mask:
        raise WorkError(
            f"version {rolled_version:08x} changes bits of {job_version:08x} "
            f"outside the mask {mask:08x}"
        )
    if _is_xor(form):
        return rolled_version ^ job_version
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


def _is_xor(form: str) -> bool:
    if form not in VERSION_BITS_FORMS:
        raise WorkError(f"version bits form {form!r} is not one of {', '.join(VERSION_BITS_FORMS)}")
    return form == "xor"


def _check_u32(**values: int) -> None:
    for name, value in values.items():
        if not 0 <= value <= _U32:
            raise WorkError(f"{name.replace('_', ' ')} {value} does not fit in 32 bits")
