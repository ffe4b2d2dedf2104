"""The fake chip chain: a thread on the master side of a pty that answers like hardware.

It answers enumeration with its chip count, takes a ticket target, and for every job
hashes the header (double SHA-256) for nonces ``0 .. scan-1``, reporting each that meets
the ticket, attributed to chip ``nonce % chips``. Real hashes: the driver checks them.
"""

from __future__ import annotations

import hashlib
import threading

from stratum_client.asic.ptys import PtyPair

from .wire import ENUMERATE, HOST_FRAMES, IDENT, JOB, NONCE, TICKET, Splitter

__all__ = ["FakeChain"]


class FakeChain:
    """``chips`` fake chips behind the pty ``pair``; :meth:`close` stops answering."""

    def __init__(self, pair: PtyPair, chips: int, *, scan: int = 4096) -> None:
        self.pair = pair
        self.chips = chips
        self.scan = scan
        self.target: int | None = None
        self.jobs = 0
        self.reported = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-chip", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _serve(self) -> None:
        splitter = Splitter(HOST_FRAMES)
        while not self._stop.is_set():
            try:
                data = self.pair.read(4096, timeout=0.05)
            except OSError:
                return
            for frame in splitter.feed(data):
                self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        if frame == ENUMERATE:
            self.pair.write(IDENT.build({"chips": self.chips}))
        elif frame[:2] == b"\xa5T":
            self.target = TICKET.parse(frame).target
        elif frame[:2] == b"\xa5J" and self.target is not None:
            job = JOB.parse(frame)
            self.jobs += 1
            self.pair.write(b"".join(self._nonces(job.job_id, job.header[:76])))

    def _nonces(self, job_id: int, prefix: bytes) -> list[bytes]:
        target = self.target or 0
        found = []
        for nonce in range(self.scan):
            header = prefix + nonce.to_bytes(4, "little")
            digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
            if int.from_bytes(digest, "little") <= target:
                found.append(
                    NONCE.build({"job_id": job_id, "chip": nonce % self.chips, "nonce": nonce})
                )
        self.reported += len(found)
        return found
