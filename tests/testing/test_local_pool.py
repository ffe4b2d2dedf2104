"""The local pool validates shares like a real pool: checked over a real TCP socket."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from stratum_client.testing.pool import LocalPool, VersionRule, vardiff_step
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


# -- strict mode: public-pool's judging ------------------------------------------------

EASY = 2.0**-24
"""Strict-mode tests brute-force nonces in Python: about one hash in 256 meets this."""
MASK = 0x1FFFE000


def rolled_header(notify: list[Any], en1: bytes, en2: bytes, version: int, nonce: int) -> bytes:
    """The header a chip hashes for ``version`` (built here with hashlib and struct)."""
    coinbase = bytes.fromhex(notify[2]) + en1 + en2 + bytes.fromhex(notify[3])
    node = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
    for branch in notify[4]:
        pair = node + bytes.fromhex(branch)
        node = hashlib.sha256(hashlib.sha256(pair).digest()).digest()
    prevhash = bytes.fromhex(notify[1])
    words = b"".join(prevhash[i : i + 4][::-1] for i in range(0, 32, 4))
    ntime, nbits = int(notify[7], 16), int(notify[6], 16)
    return struct.pack("<I32s32sIII", version, words, node, ntime, nbits, nonce)


def solve_rolled(
    notify: list[Any], en1: bytes, en2: bytes, version: int, difficulty: float
) -> tuple[int, bytes]:
    """A nonce whose rolled header meets ``difficulty``, and that header."""
    target = int(DIFF1_TARGET / difficulty)
    for nonce in range(1 << 32):
        header = rolled_header(notify, en1, en2, version, nonce)
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        if int.from_bytes(digest, "little") <= target:
            return nonce, header
    raise AssertionError("no nonce")


@contextlib.asynccontextmanager
async def connected(
    pool: LocalPool, mask: str = "1fffe000"
) -> AsyncIterator[tuple[RawMiner, bytes, list[Any]]]:
    """Configured (asking for ``mask``), subscribed and authorized on ``pool``; yields the
    miner, its extranonce1 and the first notify, and closes the connection after."""
    reader, writer = await asyncio.open_connection("127.0.0.1", pool.port)
    miner = RawMiner(reader, writer)
    try:
        await miner.call("mining.configure", [["version-rolling"], {"version-rolling.mask": mask}])
        sub = await miner.call("mining.subscribe", ["test/1"])
        authorized = await miner.call("mining.authorize", ["bcrt1qexample.emu", "x"])
        assert authorized["result"] is True
        yield miner, bytes.fromhex(sub["result"][1]), await miner.next_notify()
    finally:
        writer.close()
        await writer.wait_closed()


def set_difficulties(miner: RawMiner) -> list[float]:
    return [
        m["params"][0] for m in miner.notifications if m.get("method") == "mining.set_difficulty"
    ]


async def test_strict_pool_rebuilds_the_version_by_xor_on_a_regtest_template() -> None:
    """The public-pool case: on template 0x30000000 a chip's rolled version keeps bit 28.
    ``rolled ^ job`` is accepted; ``rolled & mask`` (what the daemon used to send) makes
    public-pool's XOR flip bit 28 off, and the share is "Difficulty too low"."""
    async with LocalPool(strict=True, difficulty=EASY) as pool, connected(pool) as link:
        miner, en1, notify = link
        assert notify[5] == "30000000"
        job_version, en2 = int(notify[5], 16), bytes(4)
        rolled = job_version | 0x2068 << 13
        nonce, header = solve_rolled(notify, en1, en2, rolled, EASY)
        fields = ["bcrt1qexample.emu", notify[0], en2.hex(), notify[7], f"{nonce:08x}"]
        masked = await miner.call("mining.submit", [*fields, f"{rolled & MASK:08x}"])
        assert masked["error"][:2] == [23, "Difficulty too low"]
        xor = await miner.call("mining.submit", [*fields, f"{rolled ^ job_version:08x}"])
        assert (xor["result"], xor["error"]) == (True, None)
    refused, accepted = pool.submits
    assert (refused.code, refused.reason, accepted.code) == (23, "Difficulty too low", None)
    assert accepted.header == header.hex()
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert accepted.hash == digest[::-1].hex()
    assert struct.unpack_from("<I", bytes.fromhex(refused.header))[0] == 0x240D0000


async def test_strict_pool_grants_its_mask_whatever_was_asked() -> None:
    async with LocalPool(strict=True) as pool:
        reader, writer = await asyncio.open_connection("127.0.0.1", pool.port)
        miner = RawMiner(reader, writer)
        options = {"version-rolling.mask": "00006000"}
        configure = await miner.call("mining.configure", [["version-rolling"], options])
        writer.close()
        await writer.wait_closed()
    assert configure["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000"}


@pytest.mark.parametrize(
    ("rule", "bits"),
    [("xor", 0x040D0000), ("or", 0x040D0000), ("or", 0x140D0000), ("replace", 0x140D0000)],
)
async def test_version_rules_can_be_chosen_on_their_own(rule: VersionRule, bits: int) -> None:
    async with (
        LocalPool(difficulty=EASY, version=0x30000000, version_rule=rule) as pool,
        connected(pool) as (miner, en1, notify),
    ):
        nonce, _ = solve_rolled(notify, en1, bytes(4), 0x340D0000, EASY)
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", f"{bits:08x}"]
        assert (await miner.call("mining.submit", fields))["result"] is True


async def test_strict_pool_takes_the_first_suggestion_and_answers_with_set_difficulty() -> None:
    async with (
        LocalPool(strict=True, difficulty=16384.0) as pool,
        connected(pool) as (miner, en1, notify),
    ):
        assert set_difficulties(miner) == [16384.0]  # public-pool's initial difficulty
        first = {"id": 10, "method": "mining.suggest_difficulty", "params": [EASY]}
        second = {"id": 11, "method": "mining.suggest_difficulty", "params": [5]}
        for request in (first, second):
            miner.writer.write(json.dumps(request).encode() + b"\n")
        # the session difficulty is now the suggested one: an EASY share is accepted
        nonce, _ = solve_rolled(notify, en1, bytes(4), int(notify[5], 16), EASY)
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
        assert (await miner.call("mining.submit", fields))["result"] is True
        assert set_difficulties(miner) == [16384.0, EASY]
        assert not [m for m in miner.notifications if m.get("id") in (10, 11)]  # no replies


async def test_strict_pool_judges_at_the_difficulty_in_force_without_grace() -> None:
    """Non-strict pools honour the previous difficulty until the next job; public-pool
    judges every share at the session difficulty it holds when the share arrives."""
    outcomes = {}
    for strict in (False, True):
        async with (
            LocalPool(strict=strict, difficulty=EASY, version=0x20000000) as pool,
            connected(pool) as (miner, en1, notify),
        ):
            nonce, _ = solve_rolled(notify, en1, bytes(4), 0x20000000, EASY)
            await pool.set_difficulty(1e9)
            fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
            outcomes[strict] = (await miner.call("mining.submit", fields))["error"]
    assert outcomes[False] is None
    assert outcomes[True][:2] == [23, "Difficulty too low"]


async def test_strict_pool_refuses_jobs_cleared_by_a_new_block() -> None:
    async with (
        LocalPool(strict=True, difficulty=EASY) as pool,
        connected(pool) as (miner, en1, notify),
    ):
        nonce, _ = solve_rolled(notify, en1, bytes(4), int(notify[5], 16), EASY)
        await pool.broadcast_new_block()
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
        stale = await miner.call("mining.submit", fields)
        assert stale["error"][:2] == [21, "Job not found"]
        again = await miner.call("mining.submit", fields)
        assert again["error"][:2] == [22, "Duplicate share"]  # remembered before judging


async def test_strict_vardiff_step_sends_set_difficulty_then_a_clean_job() -> None:
    """No shares in a step: public-pool drops the difficulty to a sixth (a power of two)."""
    async with (
        LocalPool(strict=True, difficulty=1.0, vardiff_interval=0.05) as pool,
        connected(pool) as (miner, _, first),
    ):
        notify = await miner.next_notify()  # the first step's clean job
        assert notify[-1] is True
        assert notify[0] != first[0]
        _session, old, new = pool.vardiff_steps[0]
        assert (old, new) == (1.0, 0.125)
        assert set_difficulties(miner)[:2] == [1.0, 0.125]


async def test_strict_pool_logs_the_header_and_hash_of_every_share() -> None:
    async with (
        LocalPool(strict=True, difficulty=EASY) as pool,
        connected(pool) as (miner, en1, notify),
    ):
        nonce, header = solve_rolled(notify, en1, bytes(4), int(notify[5], 16), EASY)
        fields = ["w", notify[0], "00000000", notify[7], f"{nonce:08x}", "00000000"]
        with structlog.testing.capture_logs() as logs:
            assert (await miner.call("mining.submit", fields))["result"] is True
    [event] = [e for e in logs if e["event"] == "local pool share"]
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert (event["header"], event["hash"]) == (header.hex(), digest[::-1].hex())
    assert (event["accepted"], event["code"], event["required"]) == (True, None, EASY)


@pytest.mark.parametrize(
    ("current", "shares", "total", "expected"),
    [
        (1.0, 0, 0.0, 0.125),  # no shares: a sixth, rounded down to a power of two
        (0.00004, 4, 0.00016, 0.00001),  # never below public-pool's floor
        (1.0, 60, 60.0, None),  # one a second, aiming at one a second: stay
        (1.0, 600, 600.0, 8.0),  # ten a second: up to 8 (10 rounded down)
        (64.0, 6, 384.0, 4.0),  # a share every 10 s at 64 is too slow for one a second
    ],
)
def test_vardiff_step(current: float, shares: int, total: float, expected: float | None) -> None:
    assert vardiff_step(current, shares, total, 60.0, 1.0) == expected


def test_vardiff_needs_strict_mode() -> None:
    with pytest.raises(ValueError, match="strict"):
        LocalPool(vardiff_interval=60.0)
