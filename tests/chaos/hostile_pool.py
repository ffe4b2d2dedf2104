"""A scriptable hostile Stratum server for the chaos suite.

:class:`HostileProxy` is a raw asyncio server that stands between the miner and an honest
upstream (a :class:`~stratum_client.testing.pool.LocalPool`, which validates every share).
It forwards whole lines both ways and lets a test misbehave on the pool's side of the
wire: inject scripted lines (before subscribe, or at any moment), delay every line, go
half-open (keep the socket, stop talking), or tear a line in half and reset the TCP
connection. Because the honest pool still judges every submit, the suite can tell
"the miner coped with garbage" from "the miner was fooled into sending bad shares".

The helpers at the bottom build the hostile lines themselves (over-long, invalid UTF-8,
wrong types and arities, huge merkle branches, absurd difficulties).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HostileProxy",
    "absurd_difficulty_lines",
    "fuzz_lines",
    "garbage_lines",
    "huge_branch_notify",
    "line",
    "wrong_shape_lines",
]

_READ_LIMIT = 4 * 1024 * 1024


def line(message: Any) -> bytes:
    """One JSON-RPC line as a pool would write it (NaN and Infinity allowed on purpose)."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


@dataclass(eq=False)
class _Pair:
    """One miner connection and its upstream connection."""

    miner: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    submit_ids: set[object] = field(default_factory=set)
    unanswered: set[object] = field(default_factory=set)
    """Ids of submits sent upstream whose reply has not been written to the miner."""


class HostileProxy:
    """Forwards Stratum lines between miners and ``upstream``, misbehaving on request.

    Settings apply to connections from the moment they are changed:

    * ``greeting``: lines sent to each new miner before anything from upstream
      (notifications before subscribe);
    * ``delay``: seconds every pool→miner line arrives late (a slow, distant pool);
    * ``half_open``: stop forwarding in both directions but keep the sockets open;
    * ``swallow_submit_replies``: the pool gets (and judges) every submit, but its
      answers never reach the miner, as when a connection dies with replies in flight.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = "127.0.0.1"
        self.port = 0
        self.greeting: list[bytes] = []
        self.delay = 0.0
        self.half_open = False
        self.swallow_submit_replies = False
        self.swallowed = 0
        """Submit replies withheld from the miner."""
        self.undelivered = 0
        """Submits the pool got whose reply never reached the miner: withheld, or still on
        its way when the connection was closed. A miner may rightly resend each of these."""
        self.connections = 0
        self.injected = 0
        """Hostile lines written to miners (greetings and injections)."""
        self.last_notify: bytes | None = None
        self.last_difficulty: bytes | None = None
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"stratum+tcp://{self.host}:{self.port}"

    @property
    def miners(self) -> int:
        """Miner connections open right now."""
        return len(self._pairs)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=_READ_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            self._close(pair)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HostileProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- misbehaviour on demand -----------------------------------------------------------

    async def inject(self, lines: Sequence[bytes]) -> int:
        """Write ``lines`` to every connected miner now; returns how many miners got them."""
        reached = 0
        for pair in list(self._pairs):
            for raw in lines:
                self._to_miner(pair, raw)
            with contextlib.suppress(ConnectionError):
                await pair.miner.drain()
            reached += 1
        return reached

    async def restore(self) -> None:
        """Re-send the upstream's last difficulty and job, undoing injected lies."""
        honest = [raw for raw in (self.last_difficulty, self.last_notify) if raw is not None]
        for pair in list(self._pairs):
            for raw in honest:
                pair.miner.write(raw)
            with contextlib.suppress(ConnectionError):
                await pair.miner.drain()

    async def reset_mid_line(self) -> int:
        """Send half of a notify, then reset every miner connection (RST, no FIN)."""
        torn = (self.last_notify or line({"id": None, "method": "mining.notify"}))[:40]
        count = 0
        for pair in list(self._pairs):
            pair.miner.write(torn)
            with contextlib.suppress(ConnectionError):
                await pair.miner.drain()
            sock = pair.miner.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            pair.miner.transport.abort()
            self._close(pair)
            count += 1
        return count

    # -- forwarding -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=_READ_LIMIT
            )
        except OSError:
            writer.close()
            return
        pair = _Pair(miner=writer, upstream=up_writer)
        self._pairs.add(pair)
        for raw in self.greeting:
            self._to_miner(pair, raw)
        pair.tasks = [
            asyncio.create_task(self._pump_up(pair, reader)),
            asyncio.create_task(self._pump_down(pair, up_reader)),
        ]
        await asyncio.wait(pair.tasks, return_when=asyncio.FIRST_COMPLETED)
        self._close(pair)

    def _to_miner(self, pair: _Pair, raw: bytes) -> None:
        if not pair.miner.is_closing():
            pair.miner.write(raw)
            self.injected += 1

    async def _pump_up(self, pair: _Pair, reader: asyncio.StreamReader) -> None:
        """Miner → pool."""
        with contextlib.suppress(ConnectionError, ValueError, asyncio.LimitOverrunError):
            while raw := await reader.readline():
                if self.half_open:
                    continue
                if b'"mining.submit"' in raw:
                    pair.submit_ids.add(_request_id(raw))
                    pair.unanswered.add(_request_id(raw))
                pair.upstream.write(raw)
                await pair.upstream.drain()

    async def _pump_down(self, pair: _Pair, reader: asyncio.StreamReader) -> None:
        """Pool → miner, remembering the honest difficulty and job for :meth:`restore`."""
        with contextlib.suppress(ConnectionError, ValueError, asyncio.LimitOverrunError):
            while raw := await reader.readline():
                self._remember(raw)
                if self.half_open:
                    continue
                if self.swallow_submit_replies and _request_id(raw) in pair.submit_ids:
                    self.swallowed += 1
                    continue
                if self.delay:
                    # Latency, not a throttle: every line is late by the same amount.
                    asyncio.get_running_loop().call_later(self.delay, self._late, pair, raw)
                    continue
                if pair.miner.is_closing():
                    return
                self._deliver(pair, raw)
                await pair.miner.drain()

    def _late(self, pair: _Pair, raw: bytes) -> None:
        if pair in self._pairs and not pair.miner.is_closing():
            self._deliver(pair, raw)

    @staticmethod
    def _deliver(pair: _Pair, raw: bytes) -> None:
        pair.miner.write(raw)
        pair.unanswered.discard(_request_id(raw))

    def _remember(self, raw: bytes) -> None:
        if b'"mining.notify"' in raw:
            self.last_notify = raw
        elif b'"mining.set_difficulty"' in raw:
            self.last_difficulty = raw

    def _close(self, pair: _Pair) -> None:
        if pair not in self._pairs:
            return
        self._pairs.discard(pair)
        self.undelivered += len(pair.unanswered)
        pair.unanswered.clear()
        for task in pair.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        pair.upstream.close()
        if not pair.miner.is_closing():
            pair.miner.close()


def _request_id(raw: bytes) -> object:
    """The JSON-RPC id of a line, or a marker no id equals when the line is not JSON."""
    try:
        message = json.loads(raw)
    except ValueError:
        return _NO_ID
    return message.get("id", _NO_ID) if isinstance(message, dict) else _NO_ID


_NO_ID = object()


# -- hostile lines ---------------------------------------------------------------------


def garbage_lines() -> list[bytes]:
    """Lines no JSON-RPC parser should accept: bad UTF-8, bad JSON, wrong top-level types."""
    return [
        b"\xff\xfe\x00garbage\x80\n",
        b'{"id":null,"method":"mining.notify","params":["\xc3\x28"]}\n',
        b"{not json\n",
        b"[1,2,3]\n",
        b'"just a string"\n',
        b"null\n",
        b"\n",
        b"   \n",
        b'{"id":null}\n',
        b'{"id":99999,"result":true,"error":null}\n',
        b'{"method":42,"params":[]}\n',
    ]


def wrong_shape_lines(job_id: str = "bad") -> list[bytes]:
    """Known methods with the wrong types and numbers of parameters."""
    notify = "mining.notify"
    return [
        line({"id": None, "method": notify, "params": []}),
        line({"id": None, "method": notify, "params": [job_id]}),
        line({"id": None, "method": notify, "params": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
        line({"id": None, "method": notify, "params": "not a list"}),
        line(
            {"id": None, "method": notify, "params": [job_id, "zz", "00", "00", [], "2", "3", "4"]}
        ),
        line(
            {
                "id": None,
                "method": notify,
                "params": [
                    job_id,
                    "00" * 32,
                    "00",
                    "00",
                    "notalist",
                    "20000000",
                    "1705ae3a",
                    "647025b5",
                    True,
                ],
            }
        ),
        line({"id": None, "method": "mining.set_difficulty", "params": []}),
        line({"id": None, "method": "mining.set_difficulty", "params": ["hard"]}),
        line({"id": None, "method": "mining.set_difficulty", "params": {"d": 1}}),
        line({"id": None, "method": "mining.set_extranonce", "params": [12, "x"]}),
        line({"id": None, "method": "mining.set_extranonce", "params": ["zz", 4]}),
        line({"id": None, "method": "mining.set_version_mask", "params": ["nothex"]}),
        line({"id": None, "method": "client.show_message", "params": [{"nested": [1, 2]}]}),
        line({"id": None, "method": "client.reconnect", "params": [None, "port?", "soon"]}),
        line({"id": None, "method": "mining.unheard_of", "params": [1]}),
        line({"id": None, "method": "client.get_version", "params": []}),
    ]


def huge_branch_notify(job_id: str, branches: int) -> bytes:
    """A notify whose merkle branch has ``branches`` entries (real blocks need ≤ 14 or so)."""
    return line(
        {
            "id": None,
            "method": "mining.notify",
            "params": [
                job_id,
                "11" * 32,
                "01000000010000",
                "ffffffff00000000",
                ["ab" * 32] * branches,
                "20000000",
                "1705ae3a",
                "647025b5",
                False,
            ],
        }
    )


def absurd_difficulty_lines() -> list[bytes]:
    """set_difficulty with values no pool should send; NaN/Infinity as bare JSON literals."""
    raw = [b"0", b"-1", b"-0.0", b"NaN", b"Infinity", b"-Infinity", b"1e300", b"1e999", b"true"]
    return [b'{"id":null,"method":"mining.set_difficulty","params":[' + v + b"]}\n" for v in raw]


_FUZZ_VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**64,
    1e308,
    "",
    "zz",
    "00" * 40,
    [],
    {},
    [[[]]],
    {"a": [1]},
    "\u0000\ufffd",
)


def _honest_shapes(tag: str) -> list[dict[str, Any]]:
    """Well-formed messages to mutate; jobs carry forged ids so no honest job is altered."""
    return [
        {
            "id": None,
            "method": "mining.notify",
            "params": [
                f"fz{tag}",
                "22" * 32,
                "01000000010000",
                "ffffffff00000000",
                ["cd" * 32, "ef" * 32],
                "20000000",
                "1705ae3a",
                "647025b5",
                False,
            ],
        },
        {"id": None, "method": "mining.set_difficulty", "params": [1e300]},
        {"id": None, "method": "client.show_message", "params": ["hello"]},
        {"id": None, "method": "client.reconnect", "params": ["elsewhere.example", 1, 0]},
        {"id": 424242, "result": [True, None], "error": None},
        {"id": 424243, "result": None, "error": [21, "Job not found", None]},
    ]


def fuzz_lines(rng: random.Random, count: int) -> list[bytes]:
    """``count`` mutated pool lines: swapped types, wrong arities, torn and flipped bytes.

    Mutations never produce a *valid* order a miner would be right to obey against the
    honest pool's will (a lower difficulty, a new extranonce1, a wider version mask, or
    new content under an honest job id), so any invalid share sent afterwards is the
    miner's fault.
    """
    out = []
    for n in range(count):
        message = rng.choice(_honest_shapes(str(n)))
        params = message.get("params")
        kind = rng.randrange(6)
        if kind == 0 and isinstance(params, list) and params:
            params[rng.randrange(len(params))] = rng.choice(_FUZZ_VALUES)
        elif kind == 1 and isinstance(params, list):
            del params[rng.randrange(len(params) + 1) :]
        elif kind == 2 and isinstance(params, list):
            params.extend(rng.choice(_FUZZ_VALUES) for _ in range(rng.randrange(1, 4)))
        elif kind == 3:
            message[rng.choice(["id", "method", "params", "result", "error"])] = rng.choice(
                _FUZZ_VALUES
            )
        raw = bytearray(line(message))
        if kind == 4:
            raw = raw[: rng.randrange(1, len(raw))] + b"\n"
        elif kind == 5:
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw) - 1)] = rng.randrange(256)
            raw = raw.replace(b"\n", b" ")[:-1] + b"\n"
        out.append(bytes(raw))
    return out
