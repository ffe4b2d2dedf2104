"""An emulated BM13xx chip chain: the real wire protocol on a pty, and real hashing.

* :mod:`.chain` – :class:`EmulatedChain`, the sans-IO chips (frames in, replies out,
  double SHA-256 in bounded steps)
* :mod:`.faults` – :class:`Faults`, corruption, drops, dead chips, duplicate nonces
* :mod:`.hashing` – finishing a header hash from a midstate (BM1397)
* :mod:`.server` – :class:`EmulatorServer`, the asyncio shell on a hot-pluggable pty

The server is not imported here, so the sans-IO parts load without asyncio. See
``docs/emulator.md`` for the difficulty-scale contract and how to run it.
"""

from stratum_client_bm13xx.chips import MODELS
from stratum_client_bm13xx.fastbaud import BRIDGES

from .chain import ChipState, EmulatedChain, ReportedNonce
from .faults import Faults
from .hashing import sha256d_from_midstate

EMULATED_MODELS = tuple(sorted(name.lower() for name in MODELS))
"""The chip models the emulator can be (the command line's ``--model`` choices)."""

__all__ = [
    "BRIDGES",
    "EMULATED_MODELS",
    "ChipState",
    "EmulatedChain",
    "Faults",
    "ReportedNonce",
    "sha256d_from_midstate",
]
