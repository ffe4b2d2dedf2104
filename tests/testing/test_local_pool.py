"""The local pool validates shares like a real pool: checked over a real TCP socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stratum_client.testing.pool import LocalPool
from stratum_client.work.coinbase import build_coinbase
from stratum_client.work.hashing import dsha256
from stratum_client.work.header import build_header
from stratum_client.work.merkle import merkle_root
from stratum_client.work.target import DIFF1_TARGET

DIFFICULTY = 2.0**-14


class RawMiner:
    """A hand-driven client: plain JSON lines over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.next_id = reader, writer, 0
        self.notifications: list[dict[str, Any]] = []

    async def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.next_id += 1
        line = {"id": self.next_id, "method": method, "params": params}
        self.writer.write(json.dumps(line).encode() + b"\n")
        while True:
            message = json.loads(await asyncio.wait_for(self.reader.readline(), 10))
            if message.get("id") == self.next_id and "result" in message:
                return message
            self.notifications.append(message)

    async def next_notify(self) -> list[Any]:
        while True:
            for i, message in enumerate(self.notifications):
                if message.get("method") == "mining.notify":
                    return list(self.notifications.pop(i)["params"])
            raw = await asyncio.wait_for(self.reader.readline(), 10)
            self.notifications.append(json.loads(raw))


def solve(notify: list[Any], en1: bytes, en2: bytes, difficulty: float) -> int:
    """Brute-force a nonce meeting ``difficulty`` with plain hashlib arithmetic."""
    coinbase = build_coinbase(bytes.fromhex(notify[2]), en1, en2, bytes.fromhex(notify[3]))
    root = merkle_root(dsha256(coinbase), [bytes.fromhex(b) for b in notify[4]])
    target = int(DIFF1_TARGET / difficulty)
    for nonce in range(1 << 32):
        header = build_header(
            int(notify[5], 16),
            bytes.fromhex(notify[1]),
            root,
            int(notify[7], 16),
            int(notify[6], 16),
            nonce,
        )
        if int.from_bytes(dsha256(header), "little") <= target:
            return nonce
    raise AssertionError("no nonce")


async def test_local_pool_accepts_valid_and_rejects_bad_shares() -> None:
    async with LocalPool(difficulty=DIFFICULTY) as pool:
        reader, writer = await asyncio.open_connection("127.0.0.1", pool.port)
        miner = RawMiner(reader, writer)
        sub = await miner.call("mining.subscribe", ["test/1"])
        en1 = bytes.fromhex(sub["result"][1])
        unauthorized = await miner.call("mining.submit", ["w", "1", "00000000", "0", "0"])
        assert unauthorized["error"][0] == 24
        assert (await miner.call("mining.authorize", ["worker", "x"]))["result"] is True
        notify = await miner.next_notify()
        en2 = bytes(4)
        nonce = solve(notify, en1, en2, DIFFICULTY)
        submit = ["worker", notify[0], en2.hex(), notify[7], f"{nonce:08x}"]
        assert (await miner.call("mining.submit", submit))["result"] is True
        duplicate = await miner.call("mining.submit", submit)
        assert duplicate["error"][0] == 22
        unknown = await miner.call("mining.submit", ["worker", "zz", *submit[2:]])
        assert unknown["error"][0] == 21
        await pool.set_difficulty(1e9)
        await pool.broadcast_new_job()
        nonce2 = solve(notify, en1, bytes.fromhex("01000000"), DIFFICULTY)
        low = await miner.call(
            "mining.submit", ["worker", notify[0], "01000000", notify[7], f"{nonce2:08x}"]
        )
        assert low["error"][0] == 23
        assert [s.accepted for s in pool.submits] == [False, True, False, False, False]
        writer.close()
        await writer.wait_closed()
