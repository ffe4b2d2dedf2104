"""BM1370 chains (Bitaxe Gamma boards): full-header jobs, chip-side version rolling."""

from __future__ import annotations

from stratum_client_bm13xx.driver import Bm13xxDriver

__all__ = ["Bm1370Driver"]


class Bm1370Driver(Bm13xxDriver):
    """A chain of BM1370 chips; everything model-specific comes from the BM1370 codec."""

    model = "BM1370"
