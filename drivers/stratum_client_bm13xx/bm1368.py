"""BM1368 chains (Bitaxe Supra boards): full-header jobs, chip-side version rolling."""

from __future__ import annotations

from stratum_client_bm13xx.driver import Bm13xxDriver

__all__ = ["Bm1368Driver"]


class Bm1368Driver(Bm13xxDriver):
    """A chain of BM1368 chips; everything model-specific comes from the BM1368 codec."""

    model = "BM1368"
