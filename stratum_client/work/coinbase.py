"""The coinbase transaction a miner completes with its extranonces.

The pool sends the coinbase in two halves so every miner can splice in its own
extranonce1 (fixed per connection) and extranonce2 (chosen per work unit); that splice is
the only part of the block a Stratum v1 miner varies besides nonce, ntime and version.
"""

from __future__ import annotations

from stratum_client.work.hashing import dsha256

__all__ = ["build_coinbase", "coinbase_txid"]


def build_coinbase(coinb1: bytes, extranonce1: bytes, extranonce2: bytes, coinb2: bytes) -> bytes:
    """Serialised coinbase: ``coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2``."""
    return b"".join((coinb1, extranonce1, extranonce2, coinb2))


def coinbase_txid(coinbase: bytes) -> bytes:
    """The coinbase's txid in raw byte order (the leaf the merkle branch starts from).

    The pool's coinbase carries no witness data, so its dSHA256 is the txid.
    """
    return dsha256(coinbase)
