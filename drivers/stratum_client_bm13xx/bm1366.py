"""BM1366 chains (Bitaxe Ultra boards): full-header jobs, chip-side version rolling."""

from __future__ import annotations

from stratum_client_bm13xx.driver import Bm13xxDriver

__all__ = ["Bm1366Driver"]


class Bm1366Driver(Bm13xxDriver):
    """A chain of BM1366 chips; everything model-specific comes from the BM1366 codec."""

    model = "BM1366"
