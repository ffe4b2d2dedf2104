"""``python3 -m stratum_client run`` as systemd runs it: a real process, real signals and a
real ``$NOTIFY_SOCKET`` datagram socket, mining on emulated chains against a local pool
in the test process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratum_client.testing.pool import LocalPool

if TYPE_CHECKING:
    from tests.daemon.conftest import Emulated

WAIT = 45.0


@dataclass
class DaemonProcess:
    """A daemon subprocess, its JSON log lines and the sd_notify datagrams it sent."""

    process: asyncio.subprocess.Process
    logs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("event") == event]

    def notified(self, key: str) -> list[str]:
        return [note[key] for note in self.notes if key in note]

    async def wait_until(self, what: str, predicate: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not predicate():
                    if self.process.returncode is not None:
                        raise AssertionError(f"daemon exited while waiting for: {what}")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for: {what}") from None

    async def exit_status(self) -> int:
        async with asyncio.timeout(WAIT):
            return await self.process.wait()


def _parse_notification(data: bytes) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    return dict(pairs)


@contextlib.asynccontextmanager
async def daemon_process(config: Path) -> AsyncIterator[DaemonProcess]:
    """Run the daemon on ``config`` with a real notify socket; kill it if a test fails."""
    with tempfile.TemporaryDirectory(prefix="scd-", dir="/tmp") as short:
        address = os.path.join(short, "notify")  # AF_UNIX paths are limited to 107 bytes
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(address)
        sock.setblocking(False)
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env["NOTIFY_SOCKET"] = address
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stratum_client",
            "run",
            "--config",
            str(config),
            "--log-format",
            "json",
            "--log-level",
            "info",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        run = DaemonProcess(process)
        loop = asyncio.get_running_loop()

        def receive() -> None:
            with contextlib.suppress(BlockingIOError):
                while True:
                    run.notes.append(_parse_notification(sock.recv(4096)))

        loop.add_reader(sock.fileno(), receive)
        reader = asyncio.create_task(_read_logs(process, run.logs))
        try:
            yield run
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await reader
            loop.remove_reader(sock.fileno())
            sock.close()


async def _read_logs(process: asyncio.subprocess.Process, logs: list[dict[str, Any]]) -> None:
    assert process.stderr is not None
    async for raw in process.stderr:
        try:
            logs.append(json.loads(raw))
        except ValueError:
            logs.append({"event": "<not json>", "text": raw.decode(errors="replace")})


async def test_sigterm_with_shares_in_flight_answers_them_and_exits_0(
    emulated_chains: Emulated, local_pool: LocalPool, tmp_path: Path
) -> None:
    config = tmp_path / "stratum-client.toml"
    config.write_text(emulated_chains.config([local_pool]))
    async with daemon_process(config) as daemon:
        await daemon.wait_until("READY=1", lambda: "1" in daemon.notified("READY"))
        await daemon.wait_until("shares accepted", lambda: len(local_pool.accepted) >= 3)
        await daemon.wait_until("a STATUS= line", lambda: bool(daemon.notified("STATUS")))
        local_pool.hold_submits()
        await daemon.wait_until("a share in flight", lambda: local_pool.held_submits > 0)
        daemon.process.send_signal(signal.SIGTERM)
        await daemon.wait_until("STOPPING=1", lambda: "1" in daemon.notified("STOPPING"))
        answered_before = len(local_pool.submits)
        local_pool.release_submits()
        status = await daemon.exit_status()
    assert status == 0
    [drain] = daemon.logged("share drain finished")
    assert drain["unanswered"] == 0
    # Every submit the pool received was answered, including the ones held at SIGTERM.
    submit_requests = [r for r in local_pool.requests if r.get("method") == "mining.submit"]
    assert len(local_pool.submits) == len(submit_requests) > answered_before
    assert local_pool.rejected == []
    # sd_notify order: ready, then status lines, then stopping.
    keys = [next(iter(note)) for note in daemon.notes if note]
    assert keys.index("READY") < keys.index("STOPPING")
    assert any(line.startswith("pool pool0: ") for line in daemon.notified("STATUS"))
    assert daemon.logged("daemon stopped")[0]["failed"] is False


async def test_sighup_reloads_the_pool_list_without_restarting_chains(
    emulated_chains: Emulated, pool_factory: Callable[..., Any], tmp_path: Path
) -> None:
    first: LocalPool = await pool_factory()
    second: LocalPool = await pool_factory()
    config = tmp_path / "stratum-client.toml"
    config.write_text(emulated_chains.config([first]))
    async with daemon_process(config) as daemon:
        await daemon.wait_until("shares on the first pool", lambda: len(first.accepted) >= 3)
        allow_lan = '[api]\ncgminer_allow = ["127.0.0.1/32", "192.168.0.0/16"]\n'
        config.write_text(emulated_chains.config([second], extra=allow_lan))
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.wait_until("shares on the new pool", lambda: len(second.accepted) >= 3)
        await daemon.wait_until("RELOADING=1", lambda: "1" in daemon.notified("RELOADING"))
        daemon.process.send_signal(signal.SIGTERM)
        status = await daemon.exit_status()
    assert status == 0
    assert first.rejected == second.rejected == []
    assert [line["pools"] for line in daemon.logged("config reloaded")] == [["pool0"]]
    # The API keeps its running settings, and the log says a restart applies the change.
    warned = daemon.logged("these config sections changed but take effect only after a restart")
    assert [line["sections"] for line in warned] == [["[api]"]]
    # The chains kept running: each was brought up exactly once.
    running = [line["chain"] for line in daemon.logged("chain running") if "driver" in line]
    assert sorted(running) == ["a", "b"]


async def test_restart_over_the_cgminer_api_exits_75_for_the_service_manager(
    emulated_chains: Emulated, local_pool: LocalPool, tmp_path: Path
) -> None:
    """The unit's RestartForceExitStatus=75 is what turns this clean stop into a restart."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = f'[api]\ncgminer_enabled = true\ncgminer_listen = "127.0.0.1:{port}"\n'
    config = tmp_path / "stratum-client.toml"
    config.write_text(emulated_chains.config([local_pool], extra=api))
    async with daemon_process(config) as daemon:
        await daemon.wait_until("shares accepted", lambda: len(local_pool.accepted) >= 2)
        await daemon.wait_until(
            "the API listening", lambda: bool(daemon.logged("cgminer API listening"))
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"command":"restart"}')
        await writer.drain()
        reply = await reader.read()
        writer.close()
        status = await daemon.exit_status()
    assert json.loads(reply.rstrip(b"\0")) == {"STATUS": "RESTART"}
    assert status == 75
    [stopped] = daemon.logged("daemon stopped")
    assert (stopped["failed"], stopped["exit_status"]) == (False, 75)
    assert daemon.logged("share drain finished")[0]["unanswered"] == 0
    assert local_pool.rejected == []
