"""``stratum-client pool``, run as a user runs it, spoken to over a real socket."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from stratum_client.commands.pool import parse_listen

PATIENCE = 30.0


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stratum_client", "pool", "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Client:
    """A line-at-a-time Stratum client on a plain socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self.lines = self.sock.makefile("r", encoding="utf-8")

    def call(self, rid: int, method: str, params: list[Any]) -> dict[str, Any]:
        """Send one request; return its reply, skipping notifications on the way."""
        request = {"id": rid, "method": method, "params": params}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message: dict[str, Any] = json.loads(self.lines.readline())
            if message.get("id") == rid:
                return message

    def notification(self, method: str) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(self.lines.readline())
            if message.get("method") == method:
                return message

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


def test_the_pool_command_serves_a_validating_pool_until_sigint() -> None:
    proc = _start("--listen", "127.0.0.1:0", "--difficulty", "0.5")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.search(
            r"listening on stratum\+tcp://127\.0\.0\.1:(\d+) \(difficulty 0\.5\)", first
        )
        assert found, first
        client = _Client(int(found.group(1)))
        subscribed = client.call(1, "mining.subscribe", ["test/1.0"])
        extranonce1, extranonce2_size = subscribed["result"][1], subscribed["result"][2]
        assert len(bytes.fromhex(extranonce1)) >= 1
        assert extranonce2_size == 4
        assert client.call(2, "mining.authorize", ["me.worker", "x"])["result"] is True
        job = client.notification("mining.notify")["params"]
        # a share for a job the pool never issued is refused with public-pool's code
        refused = client.call(
            3, "mining.submit", ["me.worker", "nosuchjob", "00000000", job[7], "00000000"]
        )
        assert refused["result"] is not True
        assert refused["error"][0] == 21
        client.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=PATIENCE)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "local pool stopped: 0 accepted, 1 rejected"
    assert "Traceback" not in err


def test_a_taken_port_is_one_error_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start("--listen", f"127.0.0.1:{port}")
        _, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"stratum-client pool: error: --listen: cannot listen on 127.0.0.1:{port} "
        "(Address already in use)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:13333", ("127.0.0.1", 13333)),
        ("[::1]:4000", ("::1", 4000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_listen_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["13333", "127.0.0.1", "host:port", "127.0.0.1:70000", "a@b:1"])
def test_bad_listen_addresses_are_refused_naming_the_option(text: str) -> None:
    proc = _start("--listen", text)
    _, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 2
    assert err.startswith("stratum-client pool: error: --listen: "), err
