"""Sans-IO chip codecs: Work → job frame, reply frame → :class:`NonceReply`, and back.

One codec instance serves one chain (it needs the chain length to map addresses to chip
positions). Both directions exist for every frame type so that a chip emulator can use
the same code the driver uses: it decodes host frames with :meth:`ChipCodec.decode_job`
/ :func:`.frames.parse_command` and produces replies with
:meth:`ChipCodec.encode_nonce_reply` / :meth:`ChipCodec.encode_register_reply`.

**Chip and core live inside the nonce.** A reply carries no chip field: the chip's
address byte is bits 17..24 and the core bits 25..31 of the nonce read big-endian (see
:mod:`.chips`). An emulator therefore cannot pick the chip for a nonce; it must report
for chip ``i`` only nonces for which :meth:`ChipCodec.chip_of_nonce` returns ``i``.

Byte orders (from the work types, see :mod:`stratum_client.work.job`):

* full-header jobs: nbits, ntime, version little-endian; merkle root with its eight
  words in reverse order; prevhash = the stratum prevhash bytes fully reversed;
* BM1397 jobs: merkle tail = root bytes 28..31; each midstate as state words H7..H0,
  each big-endian (``Midstate.state`` holds H0..H7, so only the word order flips).
"""

from __future__ import annotations

import abc
import struct
from dataclasses import dataclass
from typing import ClassVar

from stratum_client.errors import FrameError, WorkError
from stratum_client.work.job import DEFAULT_VERSION_MASK, Work

from . import frames, registers
from .chips import (
    BM1366,
    BM1368,
    BM1370,
    BM1397,
    ChipModel,
    address_interval,
    chip_index,
    nonce_chip_byte,
)
from .chips import job_interval_ms as _job_interval_ms
from .crc import crc5_ok
from .frames import (
    chain_inactive,
    command_frame,
    read_register,
    set_address,
    write_register,
)
from .rx import ReplyParser

__all__ = [
    "Bm1366Codec",
    "Bm1368Codec",
    "Bm1370Codec",
    "Bm1397Codec",
    "ChipCodec",
    "FullHeaderCodec",
    "FullHeaderJob",
    "MidstateJob",
    "NonceReply",
    "RegisterReply",
    "Reply",
    "chain_inactive",
    "codec_for",
    "command_frame",
    "read_register",
    "set_address",
    "write_register",
]

_WORDS = struct.Struct(">8I")
_VERSION_BITS_MASK = 0x1FFFE000
_CHIP_ID_CORE_BYTE = {"BM1397": 0x18}
"""Byte 4 of the chip-id reply as observed (0 on the other models)."""


def _reverse_words(data: bytes) -> bytes:
    """The eight 4-byte words of ``data`` in reverse order, bytes inside each unchanged."""
    return _WORDS.pack(*reversed(_WORDS.unpack(data)))


@dataclass(frozen=True, slots=True)
class NonceReply:
    """A decoded nonce reply.

    ``version_bits`` is OR-ed into the job's version (BM1366/68/70); ``midstate_index``
    says which of the BM1397's rolled versions the nonce belongs to. The reply has passed
    CRC-5 only: hash-check it before use.
    """

    nonce: int
    """As the header and ``mining.submit`` use it (wire bytes read little-endian)."""
    job_id: int
    chip_address: int
    chip_index: int
    core: int
    small_core: int
    """0 on the BM1397, which does not report one."""
    version_bits: int
    midstate_index: int
    midstate_num: int
    """Raw byte 6 of the reply (meaning not documented on full-header chips)."""


@dataclass(frozen=True, slots=True)
class RegisterReply:
    """A decoded register-read reply."""

    value: int
    """The four value bytes read big-endian."""
    chip_address: int
    chip_index: int
    register: int

    @property
    def chip_id(self) -> int:
        """For replies to a chip-id read (register 0): the model id, e.g. ``0x1370``."""
        return self.value >> 16


Reply = NonceReply | RegisterReply


@dataclass(frozen=True, slots=True)
class FullHeaderJob:
    """A BM1366/68/70 job frame decoded back to header order."""

    job_id: int
    starting_nonce: int
    nbits: int
    ntime: int
    merkle_root: bytes
    """Raw root, as in header bytes 36..67."""
    prevhash: bytes
    """As in header bytes 4..35."""
    version: int

    def header(self, nonce: int, version_bits: int = 0) -> bytes:
        """The 80-byte block header the chip hashes for ``nonce`` and rolled bits."""
        return b"".join(
            (
                (self.version | version_bits).to_bytes(4, "little"),
                self.prevhash,
                self.merkle_root,
                self.ntime.to_bytes(4, "little"),
                self.nbits.to_bytes(4, "little"),
                nonce.to_bytes(4, "little"),
            )
        )


@dataclass(frozen=True, slots=True)
class MidstateJob:
    """A BM1397 job frame decoded back to FIPS order."""

    job_id: int
    starting_nonce: int
    nbits: int
    ntime: int
    merkle_tail: bytes
    midstates: tuple[bytes, ...]
    """The ``num_midstates`` states sent, each H0..H7 big-endian (like ``Midstate.state``)."""

    def tail_block(self, nonce: int) -> bytes:
        """Header bytes 64..79 (the second SHA-256 block's payload) for ``nonce``."""
        return b"".join(
            (
                self.merkle_tail,
                self.ntime.to_bytes(4, "little"),
                self.nbits.to_bytes(4, "little"),
                nonce.to_bytes(4, "little"),
            )
        )


class ChipCodec(abc.ABC):
    """Frame codec for one chain of ``chip_count`` chips of :attr:`model`."""

    model: ClassVar[ChipModel]

    def __init__(self, chip_count: int = 1) -> None:
        self.chip_count = chip_count
        self.address_interval = address_interval(chip_count)
        self._job_ids = frozenset(self.model.job_ids())

    @property
    def reply_size(self) -> int:
        return self.model.reply_size

    @property
    def addresses(self) -> tuple[int, ...]:
        """Chip addresses in chain order."""
        return tuple(i * self.address_interval for i in range(self.chip_count))

    def chip_index(self, address: int) -> int:
        """Chain position owning an address byte."""
        return chip_index(address, self.chip_count)

    def chip_of_nonce(self, nonce: int) -> int:
        """Chain position a nonce is attributed to (by its bits 17..24, big-endian view)."""
        return self.chip_index(nonce_chip_byte(nonce))

    def next_job_id(self, previous: int) -> int:
        return self.model.next_job_id(previous)

    def job_interval_ms(self, mhz: float) -> float:
        return _job_interval_ms(self.model, self.chip_count, mhz)

    def init_steps(
        self,
        mhz: float | None = None,
        ticket_diff: float = registers.DEFAULT_TICKET_DIFFICULTY,
        version_mask: int = DEFAULT_VERSION_MASK,
    ) -> list[registers.Step]:
        """The model's init sequence for this chain (see :func:`.registers.init_steps`)."""
        return registers.init_steps(
            self.model, self.chip_count, mhz=mhz, ticket_diff=ticket_diff, version_mask=version_mask
        )

    def parser(self) -> ReplyParser[Reply]:
        """A streaming reply parser wired to :meth:`decode_frame`."""
        return ReplyParser(self.reply_size, self.decode_frame)

    # -- jobs ---------------------------------------------------------------------------

    @abc.abstractmethod
    def encode_job(self, work: Work, job_id: int) -> bytes:
        """The job frame that gives ``work`` to every chip under ``job_id``."""

    @abc.abstractmethod
    def decode_job(self, frame: bytes) -> FullHeaderJob | MidstateJob:
        """A job frame (CRC-checked) back to header-order fields."""

    def _check_job_id(self, job_id: int) -> None:
        if job_id not in self._job_ids:
            raise ValueError(f"{self.model.name}: {job_id:#04x} is not a job id the chip echoes")

    # -- replies ------------------------------------------------------------------------

    def decode_reply(self, frame: bytes) -> Reply:
        """Check a reply's size, preamble and CRC, then decode it (FrameError if bad)."""
        if len(frame) != self.reply_size or frame[:2] != frames.RX_PREAMBLE:
            raise FrameError(f"{self.model.name}: not a {self.reply_size}-byte reply")
        if not crc5_ok(frame):
            raise FrameError(f"{self.model.name}: reply CRC-5 mismatch: {frame.hex(' ')}")
        return self.decode_frame(frame)

    def decode_frame(self, frame: bytes) -> Reply:
        """Decode a reply whose size and CRC were already checked (the parser's hot path)."""
        if frame[-1] & frames.NONCE_FLAG:
            return self._decode_nonce(frame)
        fields = frames.unpack_register_reply(frame)
        return RegisterReply(
            value=fields.value,
            chip_address=fields.chip_address,
            chip_index=self.chip_index(fields.chip_address),
            register=fields.register,
        )

    def _decode_nonce(self, frame: bytes) -> NonceReply:
        fields = frames.unpack_nonce_reply(frame)
        job_id, sub = self.model.split_reply_id(fields.id)
        nh = _byteswap32(fields.nonce)
        address = (nh >> 17) & 0xFF
        full = self.model.full_header
        return NonceReply(
            nonce=fields.nonce,
            job_id=job_id,
            chip_address=address,
            chip_index=self.chip_index(address),
            core=(nh >> 25) & 0x7F,
            small_core=sub if full else 0,
            version_bits=fields.version << 13,
            midstate_index=0 if full else sub,
            midstate_num=fields.midstate_num,
        )

    @abc.abstractmethod
    def encode_nonce_reply(
        self,
        nonce: int,
        job_id: int,
        *,
        version_bits: int = 0,
        small_core: int = 0,
        midstate_index: int = 0,
        midstate_num: int = 0,
    ) -> bytes:
        """The reply a chip sends for ``nonce``; :meth:`decode_reply` gives the fields back."""

    def encode_register_reply(self, value: int, chip_address: int, register: int) -> bytes:
        """The reply a chip at ``chip_address`` sends to a read of ``register``."""
        return frames.pack_register_reply(value, chip_address, register, self.reply_size)

    def encode_chip_id_reply(self, chip_address: int = 0) -> bytes:
        """A chip's answer to the chip-id read, as observed from real chips at address 0."""
        core_byte = _CHIP_ID_CORE_BYTE.get(self.model.name, 0)
        value = self.model.chip_id << 16 | core_byte << 8
        return self.encode_register_reply(value, chip_address, registers.Reg.CHIP_ID)


class FullHeaderCodec(ChipCodec):
    """BM1366/68/70: the chip receives the whole header and rolls 16 version bits itself."""

    def encode_job(self, work: Work, job_id: int) -> bytes:
        self._check_job_id(job_id)
        try:
            data = frames.pack_full_header_job(
                job_id=job_id,
                nbits=work.job.nbits,
                ntime=work.ntime,
                merkle_root=_reverse_words(work.merkle_root),
                prev_hash=work.job.prevhash[::-1],
                version=work.version,
            )
        except (ValueError, struct.error) as exc:
            raise WorkError(f"{self.model.name}: cannot encode work {work.key}: {exc}") from exc
        return frames.job_frame(data)

    def decode_job(self, frame: bytes) -> FullHeaderJob:
        fields = frames.parse_full_header_job(frames.parse_job_frame(frame))
        return FullHeaderJob(
            job_id=fields.job_id,
            starting_nonce=fields.starting_nonce,
            nbits=fields.nbits,
            ntime=fields.ntime,
            merkle_root=_reverse_words(fields.merkle_root),
            prevhash=_reverse_words(fields.prev_hash),
            version=fields.version,
        )

    def encode_nonce_reply(
        self,
        nonce: int,
        job_id: int,
        *,
        version_bits: int = 0,
        small_core: int = 0,
        midstate_index: int = 0,
        midstate_num: int = 0,
    ) -> bytes:
        if version_bits & ~_VERSION_BITS_MASK or midstate_index:
            raise ValueError(
                f"{self.model.name}: version bits {version_bits:#x} outside 13..28 "
                f"or a midstate index {midstate_index} on a full-header chip"
            )
        id_byte = self.model.reply_id_byte(job_id, small_core)
        return frames.pack_nonce_reply(nonce, midstate_num, id_byte, version_bits >> 13, 11)


class Bm1366Codec(FullHeaderCodec):
    model = BM1366


class Bm1368Codec(FullHeaderCodec):
    model = BM1368


class Bm1370Codec(FullHeaderCodec):
    model = BM1370


class Bm1397Codec(ChipCodec):
    """BM1397: the host sends 1 or 4 midstates (one per rolled version) and the header tail."""

    model = BM1397

    def encode_job(self, work: Work, job_id: int) -> bytes:
        self._check_job_id(job_id)
        count = len(work.midstates)
        if count not in (1, 4):
            raise WorkError(f"BM1397 needs 1 or 4 midstates, work {work.key} has {count}")
        try:
            states = [_reverse_words(m.state) for m in work.midstates]
            data = frames.pack_midstate_job(
                job_id=job_id,
                num_midstates=count,
                nbits=work.job.nbits,
                ntime=work.ntime,
                merkle_tail=work.merkle_root[28:32],
                midstates=states,
            )
        except (ValueError, struct.error) as exc:
            raise WorkError(f"BM1397: cannot encode work {work.key}: {exc}") from exc
        return frames.job_frame(data)

    def decode_job(self, frame: bytes) -> MidstateJob:
        fields = frames.parse_midstate_job(frames.parse_job_frame(frame))
        used = fields.midstates[: max(1, min(fields.num_midstates, frames.MIDSTATE_SLOTS))]
        return MidstateJob(
            job_id=fields.job_id,
            starting_nonce=fields.starting_nonce,
            nbits=fields.nbits,
            ntime=fields.ntime,
            merkle_tail=fields.merkle_tail,
            midstates=tuple(_reverse_words(m) for m in used),
        )

    def encode_nonce_reply(
        self,
        nonce: int,
        job_id: int,
        *,
        version_bits: int = 0,
        small_core: int = 0,
        midstate_index: int = 0,
        midstate_num: int = 0,
    ) -> bytes:
        if version_bits or small_core:
            raise ValueError("BM1397 replies carry neither version bits nor a small core")
        id_byte = self.model.reply_id_byte(job_id, midstate_index)
        return frames.pack_nonce_reply(nonce, midstate_num, id_byte, 0, 9)


_CODECS: dict[str, type[ChipCodec]] = {
    c.model.name: c for c in (Bm1366Codec, Bm1368Codec, Bm1370Codec, Bm1397Codec)
}


def codec_for(model: ChipModel | str, chip_count: int = 1) -> ChipCodec:
    """The codec for a model (object or name) and chain length."""
    name = model if isinstance(model, str) else model.name
    try:
        return _CODECS[name.upper()](chip_count)
    except KeyError:
        raise ValueError(f"no codec for chip model {name!r}") from None


def _byteswap32(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "little"), "big")
