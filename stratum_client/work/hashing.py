"""Double SHA-256 and the reversed "display" order Bitcoin prints hashes in.

Everything inside a block (header fields, txids, merkle nodes) uses the raw digest bytes;
only humans and explorers see them reversed. Keeping both spellings here stops the
reversal from being re-invented, and got wrong, elsewhere.
"""

from __future__ import annotations

from hashlib import sha256

__all__ = ["display_hex", "dsha256"]


def dsha256(data: bytes) -> bytes:
    """SHA-256 applied twice, raw output order (what headers and merkle nodes contain)."""
    return sha256(sha256(data).digest()).digest()


def display_hex(digest: bytes) -> str:
    """Hex of ``digest`` byte-reversed: how block explorers and pools print hashes and txids."""
    return digest[::-1].hex()
