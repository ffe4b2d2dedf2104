"""BM1397 chains (GekkoScience-style sticks, Bitaxe Max): midstate jobs, host-side rolling."""

from __future__ import annotations

from stratum_client_bm13xx.driver import Bm13xxDriver

__all__ = ["Bm1397Driver"]


class Bm1397Driver(Bm13xxDriver):
    """A chain of BM1397 chips.

    The chip cannot roll versions itself: each job carries up to four midstates, one per
    rolled version. The work builder should make four when the job has a version mask
    with room for them, and one otherwise.
    """

    model = "BM1397"
    midstates = 4
