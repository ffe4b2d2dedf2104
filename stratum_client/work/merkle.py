"""The merkle root from a coinbase hash and the pool's branch.

Stratum sends only the sibling hashes on the coinbase's path to the root, already in raw
byte order, so the root is a left fold: the coinbase is always the leftmost leaf, hence
the running hash is always the left operand. Branch entries must not be reversed.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

from stratum_client.errors import WorkError

__all__ = ["merkle_root"]


def merkle_root(coinbase_hash: bytes, branch: Sequence[bytes]) -> bytes:
    """Fold ``h = dSHA256(h ‖ sibling)`` over ``branch``; raw byte order in and out."""
    if len(coinbase_hash) != 32:
        raise WorkError(f"coinbase hash must be 32 bytes, got {len(coinbase_hash)}")
    for index, sibling in enumerate(branch):
        if len(sibling) != 32:
            raise WorkError(f"merkle branch entry {index} must be 32 bytes, got {len(sibling)}")
    node = coinbase_hash
    for sibling in branch:
        node = sha256(sha256(node + sibling).digest()).digest()
    return node
