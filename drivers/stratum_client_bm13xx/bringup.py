"""Bring-up as data: the codec's init split for the driver, enumeration checked (sans-IO).

The driver replays these steps on the link; keeping the planning here leaves it only the
I/O and makes each rule testable without a port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from stratum_client.asic.records import ChainInfo
from stratum_client.errors import ChipCountError, DriverError
from stratum_client.work.job import DEFAULT_VERSION_MASK

from . import frames, registers
from .chipid import ChipIdReply
from .chips import ChipModel, model_by_chip_id
from .codec import ChipCodec
from .registers import Reg, Send, Step

__all__ = ["chain_info", "hcn_steps", "init_plan", "version_mask_steps"]

_CODEC_RAMP_START_MHZ: Final = 50.0
"""The start frequency the codec's init sequence ramps from (located and replaced)."""


def _find(steps: list[Step], part: list[Step]) -> int:
    """Index where ``part`` occurs in ``steps`` as a contiguous run, or −1."""
    size = len(part)
    for index in range(len(steps) - size + 1):
        if steps[index] == part[0] and steps[index : index + size] == part:
            return index
    return -1


def init_plan(
    codec: ChipCodec, target_mhz: float, ticket_diff: float, version_mask: int
) -> tuple[list[Step], list[Step]]:
    """The codec's init sequence split around its frequency ramp and baud switch.

    Both are replaced by the driver: the ramp honours ``ramp_step_delay`` and
    ``initial_mhz``, and the baud switch honours the ``baud`` option.
    """
    model = codec.model
    steps = codec.init_steps(
        mhz=target_mhz,
        ticket_diff=ticket_diff,
        version_mask=version_mask if model.full_header else DEFAULT_VERSION_MASK,
    )
    ramp = registers.ramp_steps(model, _CODEC_RAMP_START_MHZ, target_mhz)
    baud = registers.max_baud_steps(model)
    start = _find(steps, ramp)
    tail = steps[start + len(ramp) :] if start >= 0 else []
    if start < 0 or tail[-len(baud) :] != baud:
        raise DriverError(f"{model.name}: the codec's init sequence has an unknown layout")
    return steps[:start], tail[: -len(baud)]


def hcn_steps(model: ChipModel, chips: int, mhz: float) -> list[Step]:
    """The hash-counting-number write for ``mhz`` (it scales with the clock)."""
    if model.hcn_correction is None:
        return []
    value = registers.hash_counting_number(model, chips, mhz).to_bytes(4, "big")
    return [Send(frames.write_register(Reg.HASH_COUNTING_NUMBER, value))]


def version_mask_steps(chip_mask: int) -> list[Step]:
    """The register write that lets full-header chips roll ``chip_mask``."""
    value = registers.version_mask_value(chip_mask)
    return [Send(frames.write_register(Reg.VERSION_MASK, value))]


def chain_info(
    codec: ChipCodec, replies: Sequence[ChipIdReply], expected: int, port: str
) -> ChainInfo:
    """What enumeration found, or the error naming foreign chips or a wrong count."""
    model = codec.model
    foreign = sorted({r.chip_id for r in replies if r.chip_id != model.chip_id})
    if foreign:
        names = ", ".join(_model_label(chip_id) for chip_id in foreign)
        raise DriverError(
            f"{port}: found {names} chip(s), but this driver is for the "
            f"{model.name} ({model.chip_id:#06x})"
        )
    if len(replies) != expected:
        raise ChipCountError(expected, len(replies), port)
    ids = tuple(r.chip_id for r in replies)
    return ChainInfo(model.name, len(ids), ids, codec.addresses)


def _model_label(chip_id: int) -> str:
    try:
        return f"{model_by_chip_id(chip_id).name} ({chip_id:#06x})"
    except ValueError:
        return f"unknown ({chip_id:#06x})"
