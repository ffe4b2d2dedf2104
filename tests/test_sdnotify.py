"""sd_notify against real unix datagram sockets (filesystem and abstract namespace)."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from stratum_client.sdnotify import Notifier, watchdog_interval


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can exceed that.
    with tempfile.TemporaryDirectory(prefix="sdn") as name:
        yield Path(name)


@pytest.fixture
def receiver(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    path = short_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


@pytest.fixture
def abstract_receiver() -> Iterator[tuple[socket.socket, str]]:
    name = f"stratum-client-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    yield sock, "@" + name
    sock.close()


@pytest.fixture
def notifier(receiver: tuple[socket.socket, str]) -> Iterator[Notifier]:
    n = Notifier({"NOTIFY_SOCKET": receiver[1]})
    yield n
    n.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_with_status(notifier: Notifier, receiver: tuple[socket.socket, str]) -> None:
    assert notifier.enabled
    assert notifier.ready("mining on pool.example.com:3333")
    assert received(receiver[0]) == ["READY=1", "STATUS=mining on pool.example.com:3333"]


def test_each_message_kind(notifier: Notifier, receiver: tuple[socket.socket, str]) -> None:
    sock = receiver[0]
    assert notifier.ready()
    assert received(sock) == ["READY=1"]
    assert notifier.status("2 chains, 1.2 TH/s")
    assert received(sock) == ["STATUS=2 chains, 1.2 TH/s"]
    assert notifier.watchdog()
    assert received(sock) == ["WATCHDOG=1"]
    assert notifier.stopping("draining shares")
    assert received(sock) == ["STOPPING=1", "STATUS=draining shares"]


def test_reloading_carries_a_monotonic_timestamp(
    notifier: Notifier, receiver: tuple[socket.socket, str]
) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    first, second = received(receiver[0])
    assert first == "RELOADING=1"
    key, _, value = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert int(value) >= before


def test_status_is_kept_on_one_line(
    notifier: Notifier, receiver: tuple[socket.socket, str]
) -> None:
    notifier.status("line one\nline two\r\nthree")
    assert received(receiver[0]) == ["STATUS=line one line two three"]


def test_abstract_socket(abstract_receiver: tuple[socket.socket, str]) -> None:
    sock, address = abstract_receiver
    n = Notifier({"NOTIFY_SOCKET": address})
    try:
        assert n.ready()
        assert received(sock) == ["READY=1"]
    finally:
        n.close()


def test_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, receiver: tuple[socket.socket, str]
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", receiver[1])
    n = Notifier()
    try:
        assert n.watchdog()
        assert received(receiver[0]) == ["WATCHDOG=1"]
    finally:
        n.close()


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"}])
def test_no_op_without_a_usable_socket(env: dict[str, str]) -> None:
    n = Notifier(env)
    assert not n.enabled
    assert not n.ready()
    assert not n.watchdog()
    n.close()


def test_send_failure_never_raises_and_logs_at_debug(short_dir: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody-listens.sock")})
    try:
        with capture_logs() as logs:
            assert not n.ready()
            assert not n.stopping()
    finally:
        n.close()
    assert [e["log_level"] for e in logs] == ["debug", "debug"]
    assert logs[0]["event"] == "sd_notify send failed"
    assert logs[0]["message"] == "READY=1"


def test_close_then_send_reopens(notifier: Notifier, receiver: tuple[socket.socket, str]) -> None:
    notifier.ready()
    notifier.close()
    notifier.close()
    assert notifier.watchdog()
    assert received(receiver[0]) == ["READY=1"]
    assert received(receiver[0]) == ["WATCHDOG=1"]


# --------------------------------------------------------------------------- watchdog


def test_watchdog_interval_is_half_the_timeout() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0


def test_watchdog_pid_must_be_ours() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1234"}
    assert watchdog_interval(env, pid=1234) == 15.0
    assert watchdog_interval(env, pid=999) is None
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(mine) == 1.0


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "abc"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "-5"},
        {"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "not-a-pid"},
    ],
)
def test_watchdog_interval_none_when_not_requested(env: dict[str, str]) -> None:
    assert watchdog_interval(env) is None


def test_watchdog_interval_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 5.0
