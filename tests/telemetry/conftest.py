"""A real mosquitto broker for the telemetry tests, plus a miner snapshot and a fake control.

The broker is required, never optional: if the binary is missing the tests fail with an
explanation instead of skipping, so MQTT telemetry can never silently go untested.
It can be stopped and started again on the same port (a broker restart), and can demand
a username/password and TLS (certificates made with the ``openssl`` command).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum_client.api.model import (
    ChipState,
    DeviceState,
    DeviceStatus,
    Hashrate,
    MinerState,
)
from stratum_client.errors import InputError
from stratum_client.pool.types import PoolStatus
from stratum_client.secrets import Secret

GH = 1e9
SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin")


def _tool(name: str, why: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in SEARCH if (Path(d) / name).is_file()), None
    )
    if found is None:
        pytest.fail(
            f"{name} is not installed, but {why}; install it (e.g. `apt-get install mosquitto "
            "openssl`; .ci/run does this)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Credentials:
    username: str
    password: str


class MosquittoBroker:
    """One mosquitto process on a fixed loopback port; stop()/start() is a restart."""

    def __init__(self, directory: Path) -> None:
        self.binary = _tool("mosquitto", "the MQTT telemetry tests need a real broker")
        self.directory = directory
        self.port = _free_port()
        self.log = directory / "mosquitto.log"
        self.ca_file: Path | None = None
        self.credentials: Credentials | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def require_password(self, username: str, password: str) -> None:
        tool = _tool("mosquitto_passwd", "the broker authentication test needs it")
        path = self.directory / "passwords"
        subprocess.run([tool, "-b", "-c", str(path), username, password], check=True)
        self.credentials = Credentials(username, password)

    def require_tls(self) -> None:
        openssl = _tool("openssl", "the broker TLS test makes its certificates with it")
        d = self.directory
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run = [openssl, "req", *key, "-days", "2"]
        subprocess.run(
            [*run, "-x509", "-keyout", d / "ca.key", "-out", d / "ca.crt", "-subj", "/CN=test CA"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*run, "-keyout", d / "server.key", "-out", d / "server.csr", "-subj", "/CN=127.0.0.1"],
            check=True,
            capture_output=True,
        )
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        subprocess.run(
            [openssl, "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-out", d / "server.crt", "-days", "2",
             "-extfile", d / "san.ext"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.ca_file = d / "ca.crt"

    def _config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read tmp
        if self.credentials:
            lines += ["allow_anonymous false", f"password_file {self.directory / 'passwords'}"]
        else:
            lines.append("allow_anonymous true")
        if self.ca_file:
            d = self.directory
            lines += [f"cafile {d / 'ca.crt'}", f"certfile {d / 'server.crt'}"]
            lines.append(f"keyfile {d / 'server.key'}")
        return "\n".join(lines) + "\n"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        config = self.directory / "mosquitto.conf"
        config.write_text(self._config())
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"mosquitto exited at start:\n{self.log.read_text()}", pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"mosquitto did not listen on {self.port}:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    async def astart(self) -> None:
        """start() off the event loop, so the loop-lag measurements stay honest."""
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running anonymous broker."""
    server = MosquittoBroker(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def idle_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A configured but not yet started broker (for auth/TLS set-up or outage tests)."""
    server = MosquittoBroker(tmp_path)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- miner fakes


def make_state(**changes: Any) -> MinerState:
    """One BM1366 chain with a temperature sensor and two pools."""
    device = DeviceState(
        name="ultra",
        model="BM1366",
        chips=1,
        frequency_mhz=485.0,
        status=DeviceStatus.ALIVE,
        hashrate=Hashrate(500 * GH, 490 * GH, 480 * GH, 470 * GH),
        accepted=42,
        hw_errors=1,
        temperature_c=58.25,
        power_w=12.5,
        chip_counters=(ChipState(0, nonces=5000, hw_errors=1, last_nonce_age=0.5),),
    )
    pools = (
        PoolStatus(0, "main", "stratum+tcp://pool.example.org:3333", "bc1q.rig", "active",
                   0, 4096.0, 42, 1, 0, 1, 0, "", 0x1FFFE000),
        PoolStatus(1, "backup", "stratum+tcp://backup.example.org:3333", "bc1q.rig", "standby",
                   1, None, 0, 0, 0, 0, 0, "", 0),
    )  # fmt: skip
    state = MinerState(
        version="0.1.0",
        hostname="rig1",
        when=1_750_000_000.0,
        elapsed=600.0,
        hashrate=Hashrate(500 * GH, 490 * GH, 480 * GH, 470 * GH),
        accepted=42,
        rejected=1,
        stale=0,
        hw_errors=1,
        best_share=65_536.0,
        pools=pools,
        devices=(device,),
        power_w=12.5,
    )
    return dataclasses.replace(state, **changes)


class RecordingControl:
    """Records every ``MinerControl`` call (a fake of our own interface)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.fail: Exception | None = None

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    async def pause(self, reason: str) -> None:
        self._record("pause", reason)

    async def resume(self) -> None:
        self._record("resume")

    async def set_frequency(self, device: str, mhz: float) -> float:
        self._record("set_frequency", device, mhz)
        if mhz > 800:
            raise InputError("frequency", f"{mhz:g} MHz is above this chip's 800 MHz")
        return round(mhz / 6.25) * 6.25

    async def switch_pool(self, index: int) -> None:
        self._record("switch_pool", index)

    async def enable_pool(self, index: int, enabled: bool) -> None:
        self._record("enable_pool", index, enabled)

    async def add_pool(self, url: str, user: str, password: Secret) -> int:
        self._record("add_pool", url, user, password)
        return 2

    async def restart(self) -> None:
        self._record("restart")

    async def quit(self) -> None:
        self._record("quit")


@pytest.fixture(scope="session")
def state() -> MinerState:
    return make_state()


@pytest.fixture(name="make_state", scope="session")
def make_state_fixture() -> Callable[..., MinerState]:
    return make_state


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()
