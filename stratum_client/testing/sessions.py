"""The sessions the local pool remembers across connections, as resuming pools do.

A session id names an extranonce1: a miner that offers a known id in
``mining.subscribe`` gets the same extranonce1 back. Each session may also keep the
shares accepted on it, so a share resent on a resumed session is a duplicate.
"""

from __future__ import annotations

import hashlib
import time

from stratum_client.testing.judge import Miner

__all__ = ["Sessions"]


class Sessions:
    """Session id → extranonce1, and the shares each session had accepted."""

    def __init__(self) -> None:
        self._extranonce1: dict[str, bytes] = {}
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        self._opened = 0

    def subscribe(self, miner: Miner, wanted: str | None) -> None:
        """Resume session ``wanted`` if it is known, else open a new one, for ``miner``."""
        if wanted and wanted in self._extranonce1:
            miner.session_id = wanted
        else:
            self._opened += 1
            miner.session_id = f"{self._opened:08x}"
            self._extranonce1[miner.session_id] = self._fresh()
        miner.extranonce1 = self._extranonce1[miner.session_id]

    def renew_extranonce1(self, miner: Miner) -> None:
        """Give ``miner``'s session a new extranonce1 (``mining.set_extranonce``)."""
        miner.extranonce1 = self._extranonce1[miner.session_id] = self._fresh()

    def seen(self, session_id: str) -> set[tuple[str, ...]]:
        """The shares session ``session_id`` had accepted (to be added to)."""
        return self._seen.setdefault(session_id, set())

    def forget_shares(self) -> None:
        """A new block: no earlier share can be resent anyway."""
        self._seen.clear()

    def _fresh(self) -> bytes:
        seed = b"en1-%d-%f" % (len(self._extranonce1), time.monotonic())
        return hashlib.sha256(seed).digest()[:4]
