"""The chip chain of an emulated board: a BM13xx emulator chain gated on the board's power.

While the gate is shut (core voltage off or out of range, or reset asserted) the chips
hear nothing and say nothing, and every host write they missed is recorded as refused;
the board resets the chain the moment power goes, so chips come back at power-up state.
"""

from __future__ import annotations

from collections.abc import Callable

from stratum_client_bm13xx.emulator import EmulatedChain

__all__ = ["GatedChain"]


class GatedChain(EmulatedChain):
    """An :class:`EmulatedChain` that answers only while ``powered()`` is true."""

    def __init__(
        self,
        model: str,
        chips: int,
        *,
        powered: Callable[[], bool],
        record: Callable[[bool, int], None],
        difficulty_scale: float = 1.0,
    ) -> None:
        self.powered = powered
        self.record = record
        self.refused_bytes = 0
        super().__init__(model, chips, difficulty_scale=difficulty_scale)

    @property
    def mhz(self) -> float:
        return max((chip.mhz for chip in self.chips), default=0.0)

    @property
    def has_work(self) -> bool:
        return self.powered() and super().has_work

    def receive(self, data: bytes) -> bytes:
        if not self.powered():
            self.refused_bytes += len(data)
            self.record(False, len(data))
            return b""
        self.record(True, len(data))
        return super().receive(data)

    def flush_input(self) -> bytes:
        return super().flush_input() if self.powered() else b""

    def hash_step(self, max_hashes: int) -> bytes:
        return super().hash_step(max_hashes) if self.powered() else b""
