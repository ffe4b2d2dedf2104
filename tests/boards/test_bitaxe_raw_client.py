"""The bitaxe-raw client against a bridge the test plays by hand on a pty.

A V0 reply's length is the data size its request expects, so a reply that comes late
(its request was cancelled, as a safety poll is at shutdown) must be read with its own
request's size. Taken with the next request's size it looks like garbage, and the board's
switch-off after SIGTERM failed on exactly that (``02 00 5f 66 db`` before ``01 00 60 00``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratum_client.asic.ptys import PtyPair
from stratum_client.asic.transport import SerialLink
from stratum_client.boards.errors import ControlLinkError
from stratum_client.boards.io.bitaxe_raw import BitaxeRawClient

TPS546 = 0x24


@dataclass
class Bench:
    bridge: PtyPair
    client: BitaxeRawClient

    async def request_id(self) -> int:
        """The ID of the next request the client sends (V0: ``LEN LEN ID …``)."""
        frame = await asyncio.to_thread(self.bridge.read, 4096, 5.0)
        assert len(frame) >= 3, frame.hex(" ")
        return frame[2]


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    with PtyPair.open(tmp_path / "control") as bridge:
        link = SerialLink(bridge.path)
        await link.open()
        try:
            yield Bench(bridge, BitaxeRawClient(link, timeout=2.0))
        finally:
            await link.close()


async def test_a_late_reply_to_a_cancelled_read_is_skipped_not_taken_for_garbage(
    bench: Bench,
) -> None:
    read = asyncio.create_task(bench.client.write_read(TPS546, b"\x8d", 2))
    late_id = await bench.request_id()
    read.cancel()  # the poll is cut short before its reply arrives
    with pytest.raises(asyncio.CancelledError):
        await read
    reset = asyncio.create_task(bench.client.set_line(0, False))
    reset_id = await bench.request_id()
    # the late 2-byte reply arrives after the next request went out, then its own reply
    bench.bridge.write(bytes([2, 0, late_id, 0x66, 0xDB]) + bytes([1, 0, reset_id, 0]))
    await asyncio.wait_for(reset, 5.0)


async def test_a_reply_no_request_is_waiting_for_is_still_garbage(bench: Bench) -> None:
    reset = asyncio.create_task(bench.client.set_line(0, False))
    reset_id = await bench.request_id()
    bench.bridge.write(bytes([2, 0, (reset_id + 7) % 255, 0x66, 0xDB]))
    with pytest.raises(ControlLinkError, match="garbage on the control port"):
        await asyncio.wait_for(reset, 5.0)
