"""Sans-IO protocol codecs for Bitmain BM1366/BM1368/BM1370/BM1397 chains.

Nothing in this package touches a port or a clock: it turns work into frames, frames
into replies, and describes init sequences as data. The driver (which does the I/O)
and chip emulators share it, so both speak byte-identical frames.

* :mod:`.crc` – CRC-5 and CRC-16/CCITT-FALSE
* :mod:`.frames` – packet layouts (``construct``) and fast packers
* :mod:`.chips` – per-model facts (:class:`~.chips.ChipModel`), job intervals
* :mod:`.codec` – Work → job frame, reply ↔ :class:`~.codec.NonceReply`
* :mod:`.rx` – streaming, self-resynchronising reply parser
* :mod:`.pll` – PLL divider search and frequency ramps
* :mod:`.registers` – register values, ticket mask, baud, init sequences
"""

from .chips import BM1366, BM1368, BM1370, BM1397, MODELS, ChipModel, model_by_name
from .codec import (
    Bm1366Codec,
    Bm1368Codec,
    Bm1370Codec,
    Bm1397Codec,
    ChipCodec,
    NonceReply,
    RegisterReply,
    Reply,
    codec_for,
)
from .rx import HostFrameParser, ReplyParser

__all__ = [
    "BM1366",
    "BM1368",
    "BM1370",
    "BM1397",
    "MODELS",
    "Bm1366Codec",
    "Bm1368Codec",
    "Bm1370Codec",
    "Bm1397Codec",
    "ChipCodec",
    "ChipModel",
    "HostFrameParser",
    "NonceReply",
    "RegisterReply",
    "Reply",
    "ReplyParser",
    "codec_for",
    "model_by_name",
]
