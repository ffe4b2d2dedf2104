"""Port listing and chain detection: a scripted pty peer, the registry, and the CLI.

Detection is a class-level question to each installed driver (``AsicDriver.detect``);
the BM13xx family answers it with one broadcast chip-id read.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from stratum_client.asic import detect, transport
from stratum_client.asic.ptys import PtyPair
from stratum_client.asic.registry import detect_chain
from stratum_client.cli import main
from stratum_client.logsetup import reset_logging
from stratum_client_bm13xx import frames
from stratum_client_bm13xx.chipid import ChipIdCollector, ChipIdReply
from stratum_client_bm13xx.chips import MODELS
from stratum_client_bm13xx.codec import codec_for
from stratum_client_bm13xx.registers import Reg
from stratum_client_bm13xx.rx import HostFrameParser

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's")


class ChipIdPeer:
    """Answers every broadcast chip-id read with ``replies`` (a thread on the master side)."""

    def __init__(self, pair: PtyPair, replies: bytes) -> None:
        self.pair = pair
        self.replies = replies
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        parser = HostFrameParser()
        while not self._stop.is_set():
            try:
                data = self.pair.read(4096, timeout=0.05)
            except OSError:
                return
            for frame in parser.feed(data) if data else parser.flush():
                if frame == frames.read_register(Reg.CHIP_ID):
                    self.reads += 1
                    self.pair.write(self.replies)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def chip_ids(model: str, count: int, *, noise: bytes = b"") -> bytes:
    codec = codec_for(model, count)
    return noise + b"".join(codec.encode_chip_id_reply() for _ in range(count))


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyPair]:
    with PtyPair.open(tmp_path / "asic0") as pair:
        yield pair


@pytest.fixture(autouse=True)
def _plain_logging() -> Iterator[None]:
    yield
    reset_logging()


@pytest.mark.parametrize(("model", "count"), [("BM1366", 1), ("BM1370", 4), ("BM1397", 4)])
async def test_probe_finds_model_and_count(pty: PtyPair, model: str, count: int) -> None:
    replies = chip_ids(model, count, noise=b"\x55\xaa\x00")
    peer = ChipIdPeer(pty, replies)
    try:
        async with asyncio.timeout(10):
            result = await detect_chain(pty.path)
    finally:
        peer.close()
    assert result.chip_count == count
    assert result.models == {model: count}
    collector = ChipIdCollector()
    parsed = collector(replies) + collector(b"")
    assert [(c.chip_id, c.chip_address) for c in parsed] == [
        (c.chip_id, c.address) for c in result.chips
    ]
    assert all(c.reply_size == MODELS[model].reply_size for c in parsed)
    assert peer.reads == 1  # four BM13xx drivers installed, one family: asked once


async def test_probe_reports_nothing_when_silent(pty: PtyPair) -> None:
    async with asyncio.timeout(10):
        result = await detect_chain(pty.path, timeout=0.2)
    assert result.chip_count == 0
    assert result.as_dict()["models"] == {}


def test_unknown_chip_id_is_named() -> None:
    reply = ChipIdReply(0x1234, 0, 11)
    assert reply.model is None
    assert reply.model_name == "unknown 0x1234"
    assert reply.detected().model == "unknown 0x1234"


def test_miner_hints() -> None:
    assert detect.miner_hint(0x0403, 0x6015, "FTDI", None) is not None
    assert detect.miner_hint(None, None, "GekkoScience", "Compac F") == "GekkoScience miner"
    assert detect.miner_hint(0x10C4, 0xEA60, None, None) is not None
    assert detect.miner_hint(0x1234, 0x5678, "Acme", "Modem") is None
    assert detect.miner_hint(None, None, None, None) is None


def fake_comports() -> list[SimpleNamespace]:
    def port(device: str, vid: int | None, pid: int | None, maker: str | None) -> SimpleNamespace:
        return SimpleNamespace(
            device=device,
            description="USB Serial" if vid else "n/a",
            vid=vid,
            pid=pid,
            manufacturer=maker,
            product=None,
            serial_number="A1" if vid else None,
        )

    return [
        port("/dev/ttyUSB1", 0x0403, 0x6015, "FTDI"),
        port("/dev/ttyS0", None, None, None),
        port("/dev/ttyACM0", 0x1234, 0x0001, "Acme"),
    ]


def test_list_ports_and_cli_listing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", fake_comports)
    ports = transport.list_ports()
    assert [p.device for p in ports] == ["/dev/ttyACM0", "/dev/ttyS0", "/dev/ttyUSB1"]
    assert [p.likely_miner for p in ports] == [False, False, True]
    assert ports[2].usb_id == "0403:6015"
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("* /dev/ttyUSB1")  # lines[0] is the column header
    assert "0403:6015" in lines[3]
    assert main(["devices", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[2]["likely_miner"] is True
    assert listed[1]["usb_id"] is None


def test_cli_probe_text_and_json(pty: PtyPair, capsys: pytest.CaptureFixture[str]) -> None:
    peer = ChipIdPeer(pty, chip_ids("BM1368", 2))
    try:
        assert main(["devices", "--probe", pty.path]) == 0
        assert capsys.readouterr().out.strip() == f"{pty.path}: 2 chip(s): 2 × BM1368"
        assert main(["devices", "--probe", pty.path, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
    finally:
        peer.close()
    assert report["chip_count"] == 2
    assert report["models"] == {"BM1368": 2}
    assert report["chips"][0] == {"model": "BM1368", "chip_id": "0x1368", "address": 0}


def test_cli_probe_without_chips(pty: PtyPair, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--probe", pty.path, "--timeout", "0.2"]) == 1
    assert capsys.readouterr().out.strip() == f"{pty.path}: no chips answered"


def test_cli_probe_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = os.fspath(tmp_path / "nothing")
    assert main(["devices", "--probe", missing]) == 2
    assert "cannot open" in capsys.readouterr().err
