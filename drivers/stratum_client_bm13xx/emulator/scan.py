"""The search of one job: how scan positions map to chips and nonces, and the hashing.

Split from :mod:`.chain` (which holds the chips' registers and the wire protocol); see
its docstring for why chips, cores and rolled versions are interleaved as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from stratum_client_bm13xx.chips import address_interval
from stratum_client_bm13xx.codec import FullHeaderJob, MidstateJob

from .hashing import sha256d_from_midstate

__all__ = ["VERSION_SHIFT", "FullHeaderScan", "Hit", "Layout", "MidstateScan", "Scan"]

VERSION_SHIFT = 13
_LOW_BITS = 17


@dataclass(frozen=True, slots=True)
class Hit:
    chip: int
    nonce_bytes: bytes
    """The nonce as it sits in the header (its big-endian view's bytes)."""
    sub: int
    version_bits: int
    digest: bytes


class Layout:
    """Maps scan positions to (chip, nonce) so chips and cores interleave."""

    def __init__(self, chips: int) -> None:
        self.chips = chips
        self.interval = address_interval(chips)
        self.space = chips * self.interval << 24
        """Positions in one pass: every nonce whose address byte belongs to a chip."""

    def units(self, start: int, end: int, dead: frozenset[int]) -> Iterator[tuple[int, bytes]]:
        """Chip and header nonce bytes for positions ``start..end-1``, dead chips skipped."""
        chips, interval = self.chips, self.interval
        for position in range(start, end):
            chip = position % chips
            if chip in dead:
                continue
            rest = position // chips
            slot = rest >> 7
            address_byte = chip * interval + slot % interval
            big_endian = (rest & 0x7F) << 25 | address_byte << _LOW_BITS | slot // interval
            yield chip, big_endian.to_bytes(4, "big")


def _zero_suffix(target: int) -> bytes:
    """Top digest bytes that must be zero for a hash to be under ``target``: a cheap filter."""
    return bytes((256 - (target - 1).bit_length()) // 8)


def _deposit(index: int, mask: int) -> int:
    """Spread the bits of ``index`` over the set bits of ``mask``, lowest first."""
    result, bit = 0, 1
    while mask:
        low = mask & -mask
        if index & bit:
            result |= low
        mask ^= low
        bit <<= 1
    return result


class FullHeaderScan:
    """Search state of one BM1366/68/70 job: nonce position and version group."""

    def __init__(self, job: FullHeaderJob, mask16: int, parallel: int, layout: Layout) -> None:
        self.job = job
        self._mask16 = mask16
        self._versions = 1 << mask16.bit_count()
        self.versions = self._versions
        """Header versions searched per nonce: 2**(bits the chips may roll)."""
        self.group = min(parallel, self._versions)
        self._layout = layout
        self._tail12 = job.header(0)[64:76]
        self._group_index = 0
        self._position = 0
        self.exhausted = False
        self._load_group()

    def _load_group(self) -> None:
        first = self._group_index * self.group
        self._bits = [
            _deposit(first + sub, self._mask16) << VERSION_SHIFT for sub in range(self.group)
        ]
        self._bases = [hashlib.sha256(self.job.header(0, bits)[:64]) for bits in self._bits]

    def run(self, budget: int, target: int, dead: frozenset[int], counts: list[int]) -> list[Hit]:
        """Hash about ``budget`` positions × versions; return the hits below ``target``."""
        hits: list[Hit] = []
        units = max(1, budget // self.group)
        while units > 0 and not self.exhausted:
            end = min(self._position + units, self._layout.space)
            hits += self._sweep(self._position, end, target, dead, counts)
            units -= end - self._position
            self._position = end
            if end == self._layout.space:
                self._next_group()
        return hits

    def _next_group(self) -> None:
        self._group_index += 1
        self._position = 0
        if self._group_index * self.group >= self._versions:
            self.exhausted = True
        else:
            self._load_group()

    def _sweep(
        self, start: int, end: int, target: int, dead: frozenset[int], counts: list[int]
    ) -> list[Hit]:
        tail12, bases, bits, group = self._tail12, self._bases, self._bits, self.group
        zeros, sha256 = _zero_suffix(target), hashlib.sha256
        hits: list[Hit] = []
        for chip, nonce_bytes in self._layout.units(start, end, dead):
            counts[chip] += group
            tail = tail12 + nonce_bytes
            for sub, base in enumerate(bases):
                inner = base.copy()
                inner.update(tail)
                digest = sha256(inner.digest()).digest()
                if digest.endswith(zeros) and int.from_bytes(digest, "little") < target:
                    hits.append(Hit(chip, nonce_bytes, sub, bits[sub], digest))
        return hits


class MidstateScan:
    """Search state of one BM1397 job: nonce position, all midstates in parallel."""

    def __init__(self, job: MidstateJob, layout: Layout) -> None:
        self.job = job
        self.group = len(job.midstates)
        self.versions = 1
        """Nonce passes per job: the midstates are hashed side by side in each core."""
        self._layout = layout
        self._tail12 = job.tail_block(0)[:12]
        self._position = 0
        self.exhausted = False

    def run(self, budget: int, target: int, dead: frozenset[int], counts: list[int]) -> list[Hit]:
        """Hash about ``budget`` positions × midstates; return the hits below ``target``."""
        end = min(self._position + max(1, budget // self.group), self._layout.space)
        hits = self._sweep(self._position, end, target, dead, counts)
        self._position = end
        self.exhausted = end == self._layout.space
        return hits

    def _sweep(
        self, start: int, end: int, target: int, dead: frozenset[int], counts: list[int]
    ) -> list[Hit]:
        tail12, states, group = self._tail12, self.job.midstates, self.group
        zeros, finish = _zero_suffix(target), sha256d_from_midstate
        hits: list[Hit] = []
        for chip, nonce_bytes in self._layout.units(start, end, dead):
            counts[chip] += group
            tail = tail12 + nonce_bytes
            for sub, state in enumerate(states):
                digest = finish(state, tail)
                if digest.endswith(zeros) and int.from_bytes(digest, "little") < target:
                    hits.append(Hit(chip, nonce_bytes, sub, 0, digest))
        return hits


Scan = FullHeaderScan | MidstateScan
