"""``stratum-client devices`` listing: a header names every column, and rows line up under it."""

from __future__ import annotations

import pytest
from serial.tools import list_ports_common

from stratum_client.cli import main


def _port(device: str, vid: int | None, pid: int | None, maker: str | None) -> object:
    info = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.manufacturer = vid, pid, maker
    info.description = "USB Serial" if vid else "n/a"
    return info


def test_the_listing_starts_with_column_headers_the_rows_line_up_under(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serial.tools import list_ports

    ports = [
        _port("/dev/ttyUSB0", 0x1A86, 0x7523, "QinHeng"),
        _port("/dev/ttyS0", None, None, None),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert main(["devices"]) == 0
    listing, _, _boards = capsys.readouterr().out.partition("\n\n")  # USB boards follow
    header, *rows = listing.splitlines()
    assert header.split() == [
        "PORT",
        "USB",
        "ID",
        "MAKER",
        "DESCRIPTION",
        "[*",
        "WHY",
        "A",
        "MINER]",
    ]
    assert len(rows) == 2
    usb = next(row for row in rows if "/dev/ttyUSB0" in row)
    assert [usb.index(v) for v in ("/dev/ttyUSB0", "1a86:7523", "QinHeng", "USB Serial")] == [
        header.index(c) for c in ("PORT", "USB ID", "MAKER", "DESCRIPTION")
    ]
