"""The REST shell over real sockets, with pyasic's Bitaxe (ESP-Miner) client reading it.

pyasic probes ``http://<ip>/`` and builds ``http://<ip>:<port>/api/...`` URLs with port 80
fixed. The detection test passes ``"127.0.0.1:<port>"`` as the "ip" (pyasic only formats
it into URLs), then points the miner's web client at the same port through its public
``port`` attribute. No pyasic code is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import warnings
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from stratum_client.api.cgminer import RateLimiter
from stratum_client.api.model import MinerState
from stratum_client.api.rest_server import RestServer
from stratum_client.config import ListenAddress
from stratum_client.secrets import Secret

if TYPE_CHECKING:
    from conftest import RecordingControl

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic import APIError  # type: ignore[import-untyped]
    from pyasic.miners.bitaxe import BitAxeUltra  # type: ignore[import-untyped]
    from pyasic.miners.factory import MinerFactory  # type: ignore[import-untyped]
    from pyasic.web.espminer import ESPMinerWebAPI  # type: ignore[import-untyped]

TOKEN = "s3cret-token-value"


@contextlib.asynccontextmanager
async def serving(
    state: MinerState | Callable[[], MinerState], control: RecordingControl, **options: Any
) -> AsyncIterator[RestServer]:
    provider = state if callable(state) else (lambda: state)
    server = RestServer(ListenAddress("127.0.0.1", 0), provider, control, **options)
    async with server:
        yield server


async def http(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: miner", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_get_info_over_http(state: MinerState, control: RecordingControl) -> None:
    async with serving(state, control) as server:
        status, headers, body = await http(server.port, request("GET", "/api/system/info"))
        head_status, head_headers, head_body = await http(
            server.port, request("HEAD", "/api/system/info")
        )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body)["hashRate"] == 1500.0
    assert (head_status, head_body) == (200, b"")
    assert head_headers["Content-Length"] == headers["Content-Length"]


async def test_limits_on_head_body_time_and_rate(
    state: MinerState, control: RecordingControl
) -> None:
    limiter = RateLimiter(rate=0.0, burst=6.0)
    async with serving(state, control, read_timeout=0.3, limiter=limiter) as server:
        big_head = await http(server.port, request("GET", "/", X_Big="a" * 9000))
        big_body = await http(server.port, request("PATCH", "/api/system", b"x" * 5000))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /api/system/info HTTP/1.1\r\nHost: slow")  # never finishes
        slow = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        short_body = await http(
            server.port, b"PATCH /api/system HTTP/1.1\r\nHost: m\r\nContent-Length: 50\r\n\r\n{}"
        )
        garbage = await http(server.port, b"\x16\x03\x01\x02\x00\x01\r\n\r\n")
        ok = await http(server.port, request("GET", "/api/system/asic"))
        limited = await http(server.port, request("GET", "/api/system/asic"))
    assert big_head[0] == 431
    assert big_body[0] == 413
    assert slow.startswith(b"HTTP/1.1 408 ")
    assert short_body[0] == 408
    assert garbage[0] == 400
    assert ok[0] == 200
    assert limited[0] == 429
    assert control.calls == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /\r\n\r\n", 505),  # HTTP/0.9
        (b"GET / HTTP/2.0\r\nHost: m\r\n\r\n", 505),
        (b"G@T / HTTP/1.1\r\nHost: m\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: m\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: m\r\n folded: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"POST / HTTP/1.1\r\nHost: m\r\nContent-Length: 99999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: m\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: m\r\n" + b"A: b\r\n" * 70 + b"\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: m\r\n\r\n", 431),
        (b"GET /?" + b"&".join(b"k%d=v" % i for i in range(40)) + b" HTTP/1.1\r\nHost: m\r\n\r\n",
         400),
    ],
)  # fmt: skip
async def test_bad_requests_get_a_json_error(
    state: MinerState, control: RecordingControl, raw: bytes, status: int
) -> None:
    async with serving(state, control) as server:
        got, headers, body = await http(server.port, raw)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert "error" in json.loads(body)
    assert control.calls == []


async def test_read_only_without_token(state: MinerState, control: RecordingControl) -> None:
    async with serving(state, control) as server:
        patched = await http(
            server.port,
            request("PATCH", "/api/system", b'{"frequency": 500}', Authorization="Bearer x"),
        )
        restarted = await http(server.port, request("POST", "/api/system/restart"))
    assert (patched[0], restarted[0]) == (403, 403)
    assert control.calls == []


async def test_token_writes_reach_the_control(state: MinerState, control: RecordingControl) -> None:
    bearer = f"Bearer {TOKEN}"
    async with serving(state, control, token=Secret(TOKEN)) as server:
        frequency = b'{"frequency": 500}'
        denied = await http(
            server.port, request("PATCH", "/api/system", frequency, Authorization="Bearer no")
        )
        patched = await http(
            server.port, request("PATCH", "/api/system", frequency, Authorization=bearer)
        )
        paused = await http(server.port, request("POST", "/api/system/pause", Authorization=bearer))
        restarted = await http(
            server.port, request("POST", "/api/system/restart", Authorization=bearer)
        )
        await eventually(lambda: "restart" in control.names)
    assert denied[0] == 401
    assert patched[0] == 200
    assert json.loads(patched[2]) == {
        "message": "frequency set",
        "frequency": {"ultra": 500.0, "gamma.2": 500.0},
    }
    assert (paused[0], restarted[0]) == (200, 200)
    assert control.calls == [
        ("set_frequency", ("ultra", 500.0)),
        ("set_frequency", ("gamma.2", 500.0)),
        ("pause", ("REST API",)),
        ("restart", ()),
    ]


async def test_statistics_are_sampled(
    make_state: Callable[..., MinerState], control: RecordingControl
) -> None:
    ticks = iter(range(1, 10_000))

    def provider() -> MinerState:
        return make_state(elapsed=float(next(ticks)))

    async with serving(provider, control, stats_interval=0.02) as server:
        await eventually(lambda: len(server.history) >= 3)
        status, _, body = await http(
            server.port, request("GET", "/api/system/statistics?columns=hashrate,power")
        )
    data = json.loads(body)
    assert status == 200
    assert data["labels"] == ["hashrate", "power", "timestamp"]
    assert len(data["statistics"]) >= 3
    assert data["statistics"][0][:2] == [1500.0, 45.5]


async def test_a_failing_state_provider_gives_500_and_the_server_lives(
    state: MinerState, control: RecordingControl
) -> None:
    broken = True

    def provider() -> MinerState:
        if broken:
            raise RuntimeError("daemon bug")
        return state

    async with serving(provider, control, stats_interval=60) as server:
        failed = await http(server.port, request("GET", "/api/system/info"))
        broken = False
        recovered = await http(server.port, request("GET", "/api/system/info"))
    assert (failed[0], json.loads(failed[2])) == (500, {"error": "internal error"})
    assert recovered[0] == 200


# --------------------------------------------------------------------------- pyasic


def _one_model(state: MinerState) -> MinerState:
    """The same host with both chains on BM1366 chips: AxeOS describes one chip model,
    and pyasic picks its Bitaxe class by it (a mixed host names every model)."""
    devices = tuple(dataclasses.replace(d, model="BM1366") for d in state.devices)
    return dataclasses.replace(state, devices=devices)


def _web(port: int) -> ESPMinerWebAPI:
    web = ESPMinerWebAPI("127.0.0.1")
    web.port = port
    return web


# pyasic's get_miner cancels its losing https:// probe mid-connect and never closes that
# client socket; it is collected here so its ResourceWarning stays in this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_pyasic_detects_a_bitaxe_ultra_and_reads_its_data(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(_one_model(state), control) as server:
        miner = await MinerFactory().get_miner(f"127.0.0.1:{server.port}")
        assert isinstance(miner, BitAxeUltra)
        miner.web = _web(server.port)
        data = await miner.get_data()
    await asyncio.sleep(0)
    gc.collect()
    assert data.hashrate is not None
    assert float(data.hashrate.into(type(data.hashrate.unit).H)) == pytest.approx(1.5e12)
    assert data.uptime == 3600
    assert data.hostname == "rig1"
    assert data.wattage == 46
    assert data.fw_ver == "0.1.0"
    assert data.config is not None
    pool = data.config.pools.groups[0].pools[0]
    assert (pool.url, pool.user) == ("stratum+tcp://pool.example.org:3333", "bc1qminer.rig1")
    assert data.hashboards[0].chips == 3
    assert data.hashboards[0].chip_temp == 55.5


async def test_pyasic_web_client_reads_info_and_asic_but_cannot_write(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(_one_model(state), control) as server:
        web = _web(server.port)
        info = await web.system_info()
        asic = await web.asic_info()
        with pytest.raises(APIError):
            await web.restart()
        with pytest.raises(APIError):
            await web.update_settings(frequency=400)
    assert (info["sharesAccepted"], info["sharesRejected"]) == (120, 3)
    assert info["stratumURL"] == "pool.example.org"
    assert asic["ASICModel"] == "BM1366"
    assert control.calls == []
