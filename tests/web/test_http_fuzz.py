"""Fuzzing the HTTP routes over real sockets: random paths, headers and bodies, raw
garbage, oversized requests and slow senders. The server answers or hangs up, never
crashes, stays within a memory bound, and nothing is written without the token.

The server runs on its own event loop in a thread, so hypothesis drives it with plain
blocking sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import string
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_client.api import rest
from stratum_client.api.model import DeviceState, MinerState
from stratum_client.api.ratelimit import RateLimiter
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress
from stratum_client.secrets import Secret

TOKEN = "fuzz-token-value"
STATE = MinerState(
    version="0.1.0",
    hostname="fuzz",
    when=1_750_000_000.0,
    elapsed=60.0,
    devices=(DeviceState("a", "BM1366", 1, 485.0),),
)


@dataclass
class CountingControl:
    """Our ``MinerControl`` interface, counting calls (each must carry the token)."""

    calls: list[str] = field(default_factory=list)

    async def pause(self, reason: str) -> None:
        self.calls.append("pause")

    async def resume(self) -> None:
        self.calls.append("resume")

    async def set_frequency(self, device: str, mhz: float) -> float:
        self.calls.append("set_frequency")
        return mhz

    async def set_fan(self, device: str, percent: float | None) -> float | None:
        self.calls.append("set_fan")
        return percent

    async def set_core_voltage(self, device: str, volts: float) -> float:
        self.calls.append("set_core_voltage")
        return volts

    async def switch_pool(self, index: int) -> None:
        self.calls.append("switch_pool")

    async def enable_pool(self, index: int, enabled: bool) -> None:
        self.calls.append("enable_pool")

    async def add_pool(self, url: str, user: str, password: Secret) -> int:
        self.calls.append("add_pool")
        return 0

    async def restart(self) -> None:
        self.calls.append("restart")

    async def quit(self) -> None:
        self.calls.append("quit")


@dataclass
class Running:
    server: RestServer
    control: CountingControl
    loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    control = CountingControl()
    loop = asyncio.new_event_loop()
    servers: list[RestServer] = []
    started = threading.Event()

    async def start() -> None:
        server = RestServer(
            ListenAddress("127.0.0.1", 0), lambda: STATE, control, token=Secret(TOKEN),
            limiter=RateLimiter(rate=1e6, burst=1e6), read_timeout=0.5, max_connections=16,
        )  # fmt: skip
        await server.start()
        servers.append(server)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(servers[0].stop())
        loop.close()

    thread = threading.Thread(target=serve, name="rest-fuzz", daemon=True)
    thread.start()
    assert started.wait(10)
    yield Running(servers[0], control, loop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data``, read until the server closes; b"" if it hung up without a word."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        with contextlib.suppress(ConnectionError):
            conn.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionError):
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


def still_serving(port: int) -> None:
    reply = exchange(port, b"GET /api/system/info HTTP/1.1\r\nHost: m\r\n\r\n")
    assert status_of(reply) == 200, reply[:200]


WRITES = (("PATCH", "/api/system"), *(("POST", f"/api/system/{w}") for w in
          ("restart", "pause", "resume")))  # fmt: skip
REPLY_AFTER = [w for w in WRITES if w[1] != "/api/system/restart"]
"""Writes answered after the control ran (restart answers first, then restarts)."""
FIXTURE = [HealthCheck.function_scoped_fixture]
token_chars = st.characters(min_codepoint=33, max_codepoint=126)
header_name = st.text(string.ascii_letters + "-_!#", min_size=1, max_size=20)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PATCH", "PUT", "OPTIONS", "DELETE", "X"]),
    path=st.sampled_from([*rest.ROUTES, "/api/ws", "/metrics", "/api/history", "/static/app.js",
                          "/api/dashboard", "//", "/%00", "/api/history?since=x"])
    | st.text(token_chars, max_size=40).map("/".__add__),
    headers=st.dictionaries(header_name, header_value, max_size=6),
    body=st.binary(max_size=300),
    authorization=st.none() | st.just(f"Bearer {TOKEN}")
    | st.text(token_chars, max_size=30).map("Bearer ".__add__),
)  # fmt: skip
def test_random_requests_answer_and_never_write_without_the_token(
    running: Running,
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    authorization: str | None,
) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: fuzz", f"Content-Length: {len(body)}"]
    skip = {"authorization", "content-length", "host", "transfer-encoding", "upgrade",
            "connection", "expect"}  # fmt: skip
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in skip]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    before = len(running.control.calls)
    reply = exchange(running.port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    status = status_of(reply)
    assert status is not None, reply[:200]
    assert 100 <= status < 600
    if (method, path) not in REPLY_AFTER and status == 200 and path == "/api/system/restart":
        deadline = time.monotonic() + 5  # restart answers first; let its call land here
        while len(running.control.calls) == before and time.monotonic() < deadline:
            time.sleep(0.01)
    wrote = len(running.control.calls) > before
    if wrote:
        assert authorization == f"Bearer {TOKEN}"
        assert (method, path) in WRITES
    elif authorization == f"Bearer {TOKEN}" and (method, path) in REPLY_AFTER and status == 200:
        raise AssertionError("a write answered 200 without reaching the control")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4000))
def test_raw_garbage_is_answered_or_dropped(running: Running, data: bytes) -> None:
    before = len(running.control.calls)
    reply = exchange(running.port, data + b"\r\n\r\n")
    status = status_of(reply)
    assert reply == b"" or (status is not None and 100 <= status < 600), reply[:200]
    assert len(running.control.calls) == before


def test_oversized_requests_are_refused_in_bounded_memory(running: Running) -> None:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            head = exchange(running.port, b"GET / HTTP/1.1\r\nHost: m\r\nX-Big: " +
                            b"a" * 200_000 + b"\r\n\r\n")  # fmt: skip
            many = exchange(running.port, b"GET / HTTP/1.1\r\nHost: m\r\n" +
                            b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n")  # fmt: skip
            body = exchange(running.port, b"PATCH /api/system HTTP/1.1\r\nHost: m\r\n"
                            b"Authorization: Bearer " + TOKEN.encode() +
                            b"\r\nContent-Length: 1000000\r\n\r\n" + b"{" * 1_000_000)  # fmt: skip
            chunked = exchange(running.port, b"PATCH /api/system HTTP/1.1\r\nHost: m\r\n"
                               b"Authorization: Bearer " + TOKEN.encode() +
                               b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                               b"1000\r\n" + b"{" * 4096 + b"\r\n" + b"1000\r\n" + b"{" * 4096 +
                               b"\r\n0\r\n\r\n")  # fmt: skip
            assert status_of(head) == 431
            assert status_of(many) in (400, 431)
            assert status_of(body) in (413, None)  # refused before the body is read
            assert status_of(chunked) == 413
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert grown < 4 * 1024 * 1024, f"{grown} bytes kept after 80 oversized requests"
    assert "set_frequency" not in running.control.calls
    still_serving(running.port)


def test_slow_senders_are_cut_off_and_others_still_served(running: Running) -> None:
    slow = []
    for _ in range(24):  # more than max_connections
        conn = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        conn.sendall(b"GET /api/system/info HTTP/1.1\r\nHost: slo")  # never finishes
        slow.append(conn)
    started = time.monotonic()
    try:
        for conn in slow:
            data = b""
            with contextlib.suppress(ConnectionError):
                while chunk := conn.recv(4096):
                    data += chunk
            assert data == b"" or status_of(data) in (408, 503), data[:100]
        assert time.monotonic() - started < 10  # each closed at its deadline, not hung
    finally:
        for conn in slow:
            conn.close()
    still_serving(running.port)
    assert running.server.active == 0 or running.server.active <= 1
