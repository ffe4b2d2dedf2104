"""A real mosquitto broker on a free loopback port, started and stopped per test.

The broker is a hard requirement of the suite (CI installs it): a missing binary fails
the test loudly instead of skipping it, so the MQTT paths can never silently go untested.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (path for path in _CANDIDATES if Path(path).is_file()), None
    )
    if found is None:
        pytest.fail(
            "mosquitto is not installed (looked on PATH and in /usr/sbin): the energy MQTT "
            "tests need a real broker; install it with `apt-get install mosquitto`",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """A mosquitto process that can be stopped and restarted on the same port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
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


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Broker]:
    """A running broker; ``.stop()`` / ``.start()`` simulate an outage and a restart."""
    broker = Broker(_mosquitto(), tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
