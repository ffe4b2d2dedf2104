"""SerialLink against real ptys, pyserial's loop:// and socket:// to a local TCP server."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import platform
import sys
import termios
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from stratum_client.asic.ptys import HotplugPty, PtyPair
from stratum_client.asic.transport import INITIAL_BAUDRATE, SerialLink
from stratum_client.backoff import Backoff
from stratum_client.errors import DriverError, SerialLinkLostError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pty semantics are Linux's")

PATIENCE = 10.0
"""Generous upper bound for anything that should take milliseconds (loaded CI machines)."""


async def wait_until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not predicate():  # noqa: ASYNC110 - polls plain counters; there is no event
            await asyncio.sleep(0.01)


async def read_link(link: SerialLink, size: int) -> bytes:
    data = b""
    async with asyncio.timeout(PATIENCE):
        while len(data) < size:
            data += await link.read(size - len(data), timeout=PATIENCE)
    return data


async def read_master(pair: PtyPair, size: int) -> bytes:
    data = b""
    async with asyncio.timeout(PATIENCE):
        while len(data) < size:
            data += await asyncio.to_thread(pair.read, size - len(data), 0.5)
    return data


@pytest.fixture
def pty() -> Iterator[PtyPair]:
    with PtyPair.open() as pair:
        yield pair


@pytest.fixture
def hotplug(tmp_path: Path) -> Iterator[HotplugPty]:
    with HotplugPty(tmp_path / "asic0") as device:
        yield device


@pytest.fixture
async def pty_link(pty: PtyPair) -> AsyncIterator[SerialLink]:
    async with SerialLink(pty.path) as link:
        yield link


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"socket://127.0.0.1:{port}"


# --- round trips -------------------------------------------------------------------------


async def test_pty_round_trip_both_directions(pty: PtyPair, pty_link: SerialLink) -> None:
    await pty_link.write(b"\x55\xaa\x52\x05\x00\x00\x0a")
    assert await read_master(pty, 7) == b"\x55\xaa\x52\x05\x00\x00\x0a"
    pty.write(b"\xaa\x55\x13\x70\x00\x00")
    assert await read_link(pty_link, 6) == b"\xaa\x55\x13\x70\x00\x00"
    assert (pty_link.bytes_out, pty_link.bytes_in) == (7, 6)


async def test_round_trip_on_a_descriptor_above_1024(pty: PtyPair) -> None:
    """A daemon with ~200 chains holds descriptors past select()'s 1024 limit; a port
    opened there must still read and write (the link must not wait in select())."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 1200, "need 1200 descriptors"
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    try:
        async with SerialLink(pty.path) as link:
            await link.write(b"\x55\xaa\x52\x05\x00\x00\x0a")
            assert await read_master(pty, 7) == b"\x55\xaa\x52\x05\x00\x00\x0a"
            pty.write(b"\xaa\x55\x13\x70\x00\x00")
            assert await read_link(link, 6) == b"\xaa\x55\x13\x70\x00\x00"
            assert max(fillers) >= 1024
    finally:
        for fd in fillers:
            os.close(fd)


async def test_pty_symlink_path_opens_the_slave(tmp_path: Path) -> None:
    with PtyPair.open(tmp_path / "asic0") as pair:
        assert os.readlink(tmp_path / "asic0") == pair.slave_name
        async with SerialLink(pair.path) as link:
            await link.write(b"ping")
            assert await read_master(pair, 4) == b"ping"
    assert not (tmp_path / "asic0").is_symlink()


async def test_loop_url_round_trip() -> None:
    async with SerialLink("loop://") as link:
        payload = bytes(range(256)) * 4
        await link.write(payload)
        assert await read_link(link, len(payload)) == payload


async def test_socket_url_round_trip(echo_url: str) -> None:
    async with SerialLink(echo_url) as link:
        await link.write(b"hello chips")
        assert await read_link(link, 11) == b"hello chips"
        await link.set_baudrate(1_000_000)  # no UART behind a socket: stored, data still flows
        assert link.baudrate == 1_000_000
        await link.write(b"again")
        assert await read_link(link, 5) == b"again"


async def test_read_returns_at_most_max_bytes_and_keeps_the_rest() -> None:
    async with SerialLink("loop://") as link:
        await link.write(b"abcdef")
        await wait_until(lambda: link.bytes_in == 6)
        assert await link.read(4) == b"abcd"
        assert await link.read(4) == b"ef"


async def test_read_timeout_returns_empty(pty_link: SerialLink) -> None:
    assert await pty_link.read(16, timeout=0.05) == b""
    assert pty_link.is_open


async def test_read_timeout_returns_empty_on_loop_url() -> None:
    async with SerialLink("loop://") as link:
        assert await link.read(16, timeout=0.05) == b""


# --- baud switching ----------------------------------------------------------------------


async def test_baud_switch_mid_session_reaches_the_pty(pty: PtyPair, pty_link: SerialLink) -> None:
    speeds = termios.tcgetattr(pty.slave_fd)[4:6]
    assert speeds == [termios.B115200, termios.B115200]
    await pty_link.set_baudrate(1_000_000)
    assert termios.tcgetattr(pty.slave_fd)[4:6] == [termios.B1000000, termios.B1000000]
    assert pty_link.baudrate == 1_000_000
    await pty_link.write(b"fast")
    assert await read_master(pty, 4) == b"fast"


@pytest.mark.skipif(
    platform.machine() not in {"x86_64", "aarch64", "armv7l", "riscv64"},
    reason="TCGETS2 ioctl number is architecture specific",
)
async def test_non_standard_baud_on_pty(pty: PtyPair, pty_link: SerialLink) -> None:
    await pty_link.set_baudrate(3_125_000)  # BM1397's fast UART has no B-constant
    termios2 = array.array("i", [0] * 64)
    fcntl.ioctl(pty.slave_fd, 0x802C542A, termios2)  # TCGETS2
    assert (termios2[9], termios2[10]) == (3_125_000, 3_125_000)


async def test_baud_switch_drains_pending_tx_first(pty: PtyPair, pty_link: SerialLink) -> None:
    await pty_link.write(b"switch to 1M")
    await pty_link.set_baudrate(1_000_000)
    assert await read_master(pty, 12) == b"switch to 1M"


async def test_baud_switch_flushes_stale_input(pty: PtyPair, pty_link: SerialLink) -> None:
    stale = b"\xff\x00garbage at the old rate"
    pty.write(stale)
    await wait_until(lambda: pty_link.bytes_in == len(stale))
    await pty_link.set_baudrate(1_000_000)
    assert await pty_link.read(64, timeout=0.1) == b""
    pty.write(b"\xaa\x55")
    assert await read_link(pty_link, 2) == b"\xaa\x55"


async def test_baud_switch_on_loop_url() -> None:
    async with SerialLink("loop://") as link:
        await link.set_baudrate(1_000_000)
        await link.write(b"ok")
        assert await read_link(link, 2) == b"ok"


async def test_reset_input_discards_unread_bytes() -> None:
    async with SerialLink("loop://") as link:
        await link.write(b"stale")
        await wait_until(lambda: link.bytes_in == 5)
        link.reset_input()
        assert await link.read(16, timeout=0.05) == b""


# --- unplug and replug -------------------------------------------------------------------


async def test_unplug_makes_read_raise_link_lost(pty: PtyPair, pty_link: SerialLink) -> None:
    pty.close_master()
    with pytest.raises(SerialLinkLostError, match="vanished") as caught:
        await pty_link.read(16, timeout=PATIENCE)
    assert not pty_link.is_open
    assert isinstance(caught.value.__cause__, OSError)  # pyserial's, chained not leaked
    with pytest.raises(SerialLinkLostError):
        await pty_link.write(b"\x00")
    with pytest.raises(SerialLinkLostError):
        await pty_link.read(16, timeout=0.05)


async def test_unplug_makes_write_raise_link_lost(pty: PtyPair, pty_link: SerialLink) -> None:
    pty.close_master()
    with pytest.raises(SerialLinkLostError):
        await pty_link.write(b"\x55\xaa")


async def test_bytes_received_before_unplug_are_still_delivered(
    pty: PtyPair, pty_link: SerialLink
) -> None:
    pty.write(b"last words")
    await wait_until(lambda: pty_link.bytes_in == 10)
    pty.close_master()
    await wait_until(lambda: not pty_link.is_open)
    assert await pty_link.read(64) == b"last words"
    with pytest.raises(SerialLinkLostError):
        await pty_link.read(64)


async def test_replug_at_same_path_reopens_within_5s(hotplug: HotplugPty) -> None:
    link = SerialLink(hotplug.path)
    await link.open()
    try:
        await link.set_baudrate(1_000_000)
        generation = link.generation
        hotplug.unplug()
        with pytest.raises(SerialLinkLostError):
            await link.read(16, timeout=PATIENCE)

        started = time.monotonic()
        replug = asyncio.get_running_loop().call_later(0.3, hotplug.plug)
        await link.reopen(timeout=PATIENCE)
        elapsed = time.monotonic() - started
        replug.cancel()

        assert elapsed < 5.0
        assert link.is_open
        assert link.baudrate == INITIAL_BAUDRATE
        assert link.generation == generation + 1
        slave_speeds = termios.tcgetattr(hotplug.pair.slave_fd)[4:6]
        assert slave_speeds == [termios.B115200, termios.B115200]
        await link.write(b"hello again")
        assert await read_master(hotplug.pair, 11) == b"hello again"
        hotplug.pair.write(b"\xaa\x55")
        assert await read_link(link, 2) == b"\xaa\x55"
    finally:
        await link.close()


async def test_reopen_gives_up_after_timeout(hotplug: HotplugPty) -> None:
    link = SerialLink(hotplug.path, reconnect=Backoff(0.01, 0.05, jitter="none"))
    await link.open()
    hotplug.unplug()
    with pytest.raises(SerialLinkLostError, match="did not come back"):
        await link.reopen(timeout=0.3)
    assert not link.is_open
    await link.close()


async def test_wait_for_device_returns_once_the_path_exists(hotplug: HotplugPty) -> None:
    hotplug.unplug()
    asyncio.get_running_loop().call_later(0.2, hotplug.plug)
    await SerialLink(hotplug.path).wait_for_device(timeout=PATIENCE)
    assert hotplug.plugged


async def test_wait_for_device_times_out(tmp_path: Path) -> None:
    link = SerialLink(str(tmp_path / "never"))
    with pytest.raises(SerialLinkLostError, match="did not appear"):
        await link.wait_for_device(timeout=0.2)


async def test_socket_peer_closing_is_link_lost() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, SerialLink(f"socket://127.0.0.1:{port}") as link:
        assert await read_link(link, 3) == b"bye"
        with pytest.raises(SerialLinkLostError, match="end of stream"):
            await link.read(16, timeout=PATIENCE)


# --- opening, closing, bookkeeping -------------------------------------------------------


async def test_opening_a_missing_device_is_link_lost(tmp_path: Path) -> None:
    with pytest.raises(SerialLinkLostError, match="cannot open"):
        await SerialLink(str(tmp_path / "ttyUSB9")).open()


async def test_refused_socket_is_link_lost() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(SerialLinkLostError):
        await SerialLink(f"socket://127.0.0.1:{port}").open()


async def test_unknown_url_scheme_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="cannot open"):
        await SerialLink("bogus://nowhere").open()


async def test_io_on_a_closed_link_is_link_lost(pty: PtyPair) -> None:
    link = SerialLink(pty.path)
    with pytest.raises(SerialLinkLostError, match="not open"):
        await link.write(b"x")
    async with link:
        assert link.is_open
    assert not link.is_open
    with pytest.raises(SerialLinkLostError, match="not open"):
        await link.read(1)
    await link.close()  # idempotent


async def test_link_can_be_reopened_after_close(pty: PtyPair) -> None:
    link = SerialLink(pty.path)
    for _ in range(2):
        async with link:
            await link.write(b"x")
            assert await read_master(pty, 1) == b"x"
    assert link.generation == 2
    assert link.bytes_out == 2


async def test_unread_input_is_bounded_and_oldest_dropped() -> None:
    with capture_logs() as logs:
        async with SerialLink("loop://", max_buffer=16) as link:
            await link.write(bytes(range(40)))
            await wait_until(lambda: link.bytes_in == 40)
            assert await link.read(64) == bytes(range(24, 40))
            assert link.bytes_dropped == 24
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "serial input overflow, dropping oldest bytes"
    ]


# --- the pty helpers themselves -----------------------------------------------------------


def test_pty_slave_is_raw_and_does_not_echo(pty: PtyPair) -> None:
    lflag = termios.tcgetattr(pty.slave_fd)[3]
    assert not lflag & (termios.ECHO | termios.ICANON)
    pty.write(b"no echo\n")
    assert pty.read(64, timeout=0.1) == b""


def test_hotplug_repoints_the_symlink_at_a_new_pty(hotplug: HotplugPty) -> None:
    first = hotplug.pair.slave_name
    hotplug.unplug()
    assert not hotplug.link.is_symlink()
    with pytest.raises(RuntimeError, match="unplugged"):
        _ = hotplug.pair
    second = hotplug.plug()
    assert os.readlink(hotplug.link) == second.slave_name
    assert hotplug.plug() is second  # plugging twice is a no-op
    assert first  # a new /dev/pts/N may reuse the number; the pair is new either way


def test_closing_an_old_pair_keeps_a_newer_symlink(tmp_path: Path) -> None:
    link = tmp_path / "asic0"
    old = PtyPair.open(link)
    with PtyPair.open(link) as new:
        old.close()
        assert os.readlink(link) == new.slave_name


async def test_loop_goes_idle_after_a_write_that_filled_the_kernel_buffer(
    pty: PtyPair, pty_link: SerialLink
) -> None:
    """A partial write once left a callback that made the event loop spin at full CPU."""
    payload = bytes(range(256)) * 1024  # far more than a pty buffers
    writer = asyncio.create_task(pty_link.write(payload))
    assert await read_master(pty, len(payload)) == payload
    await writer
    before = time.process_time()
    await asyncio.sleep(1.0)
    # an idle loop burns almost no CPU; the spinning one burnt the whole second
    assert time.process_time() - before < 0.5
