"""Chip-id replies: who answers the broadcast chip-id read, parsed from raw bytes (sans-IO).

The read is sent at 115 200 baud, the rate chips power up with. The reply size depends
on the model (11 bytes, 9 on the BM1397), which detection does not know yet, so the byte
stream is parsed at both sizes; a reply counts only if its chip id names a known model
whose replies have the size it was parsed at. That second condition rejects the 1-in-32
frames of the wrong size whose CRC-5 happens to pass. Enumeration knows its model and
parses at that one size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stratum_client.asic.detect import DetectedChip

from . import frames
from .chips import MODELS, ChipModel, model_by_chip_id
from .registers import Reg
from .rx import ReplyParser

__all__ = ["FIRST_REPLY_TIMEOUT", "QUIET_GAP", "REPLY_SIZES", "ChipIdCollector", "ChipIdReply"]

FIRST_REPLY_TIMEOUT = 1.0
"""Seconds to wait for the first chip-id reply before deciding nobody is there."""
QUIET_GAP = 0.2
"""Seconds without a further reply that end the collection once one has arrived."""
REPLY_SIZES = tuple(sorted({m.reply_size for m in MODELS.values()}, reverse=True))


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

    def detected(self) -> DetectedChip:
        return DetectedChip(self.model_name, self.chip_id, self.chip_address)


class ChipIdCollector:
    """Feed received bytes (``b""`` after a silence); get the chip-id replies they held."""

    def __init__(self, reply_sizes: Iterable[int] = REPLY_SIZES) -> None:
        sizes = tuple(reply_sizes)
        self._strict = len(sizes) > 1
        self._parsers = [ReplyParser(size, bytes) for size in sizes]

    def __call__(self, data: bytes) -> list[ChipIdReply]:
        found: list[ChipIdReply] = []
        for parser in self._parsers:
            for frame in parser.feed(data) if data else parser.flush():
                reply = self._reply(frame)
                if reply is not None:
                    found.append(reply)
        return found

    def _reply(self, frame: bytes) -> ChipIdReply | None:
        """The chip-id reply in a CRC-valid frame, or ``None`` for anything else."""
        if frame[-1] & frames.NONCE_FLAG:
            return None
        fields = frames.unpack_register_reply(frame)
        if fields.register != Reg.CHIP_ID:
            return None
        reply = ChipIdReply(fields.value >> 16, fields.chip_address, len(frame))
        if self._strict and (reply.model is None or reply.model.reply_size != len(frame)):
            return None
        return reply
