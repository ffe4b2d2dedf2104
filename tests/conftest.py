"""Fixtures shared by every suite: a real mosquitto broker.

The broker is required, never optional: if the binary is missing the tests fail with an
explanation instead of skipping, so no MQTT path can silently go untested (CI installs
it). One broker runs per test on a free loopback port; ``stop()``/``start()`` (or
``astop()``/``astart()`` from async code) is a restart on the same port, and it can
demand a username/password and TLS (certificates made with the ``openssl`` command).

Fixtures: ``broker`` (running, anonymous), ``mosquitto_broker`` (the same, under the
energy suites' name) and ``idle_broker`` (configured, not started: for auth/TLS set-up
or outage tests).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
        self.binary = _tool("mosquitto", "the MQTT tests need a real broker")
        self.directory = directory
        self.port = _free_port()
        self.config = directory / "mosquitto.conf"
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

    def _config_text(self) -> str:
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
        self.config.write_text(self._config_text())
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
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


def _own_directory(tmp_path: Path) -> Path:
    """The broker's files stay apart from whatever else the test keeps in ``tmp_path``."""
    directory = tmp_path / "mosquitto"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running anonymous broker."""
    server = MosquittoBroker(_own_directory(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mosquitto_broker(broker: MosquittoBroker) -> MosquittoBroker:
    """The same running broker under the name the energy suites use."""
    return broker


@pytest.fixture
def idle_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A configured but not yet started broker (for auth/TLS set-up or outage tests)."""
    server = MosquittoBroker(_own_directory(tmp_path))
    try:
        yield server
    finally:
        server.stop()


Broker = MosquittoBroker
"""The name the energy suites annotate with."""


# -- the opt-in real-peer test (tests/peers): not even collected without --real-pool --------

_PEERS = Path(__file__).parent / "peers"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("real-pool", "the daemon against real peers (tests/peers/README.md)")
    group.addoption("--real-pool", action="store_true", help="collect and run tests/peers")
    for name, env, what in (
        ("--pool-url", "REAL_POOL_URL", "the pool's stratum+tcp:// URL"),
        ("--bitcoind-rpc", "REAL_POOL_RPC", "bitcoind RPC URL with credentials"),
        ("--payout-address", "REAL_POOL_ADDRESS", "the payout address (user <address>.emu)"),
        ("--real-pool-duration", "REAL_POOL_DURATION", "seconds of mining (default 60)"),
    ):
        group.addoption(name, default=os.environ.get(env), help=f"{what}; env {env}")
    group.addoption(
        "--submit-below-difficulty",
        action="store_true",
        default=os.environ.get("REAL_POOL_SUBMIT_BELOW") == "1",
        help="submit block candidates below the pool difficulty (block-first pools such as "
        "ckpool); off for public-pool; env REAL_POOL_SUBMIT_BELOW=1",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/peers needs outside peers: it is left out of the default suite entirely."""
    if collection_path == _PEERS and not config.getoption("--real-pool"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Named on the command line (``pytest tests/peers``) it is deselected instead."""
    if config.getoption("--real-pool"):
        return
    peers = [item for item in items if _PEERS in item.path.parents]
    if peers:
        config.hook.pytest_deselected(items=peers)
        items[:] = [item for item in items if item not in peers]
