"""The cgminer API over real TCP sockets, with pyasic as a real client.

pyasic's ``CGMinerRPCAPI(ip, port)`` takes a port, so the server binds an ephemeral one.
Its ``CGMiner`` miner class builds that client with the default 4028 and no way to pass
another, so the tests set ``miner.rpc.port`` on the instance; nothing else is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import warnings
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from stratum_client.api.cgminer import RateLimiter
from stratum_client.api.cgminer_server import CgminerServer, client_allowed
from stratum_client.api.model import MinerState
from stratum_client.config import ListenAddress
from stratum_client.errors import InputError

if TYPE_CHECKING:
    from conftest import RecordingControl

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pyasic's pydantic-v1 style models
    from pyasic.miners.backends.cgminer import CGMiner  # type: ignore[import-untyped]
    from pyasic.rpc.cgminer import CGMinerRPCAPI  # type: ignore[import-untyped]

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
ELSEWHERE = (ipaddress.ip_network("10.0.0.0/8"),)


@contextlib.asynccontextmanager
async def serving(
    state: MinerState, control: RecordingControl, **options: Any
) -> AsyncIterator[CgminerServer]:
    options.setdefault("allow", LOOPBACK)
    server = CgminerServer(
        ListenAddress("127.0.0.1", 0), state_provider=lambda: state, control=control, **options
    )
    async with server:
        yield server


async def exchange(port: int, data: bytes) -> Any:
    """Send one request; read to EOF (the server closes); parse the NUL-ended JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert raw.endswith(b"\x00"), raw[-40:]
    return json.loads(raw[:-1])


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_text_and_json_requests(state: MinerState, control: RecordingControl) -> None:
    async with serving(state, control) as server:
        text = await exchange(server.port, b"summary")
        as_json = await exchange(server.port, b'{"command":"summary"}')
    assert text["SUMMARY"][0]["GHS 5s"] == 1500.0
    assert as_json["SUMMARY"] == text["SUMMARY"]


async def test_json_split_across_writes_is_reassembled(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b'{"command":')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b'"pools"}')
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    assert json.loads(raw[:-1])["POOLS"][0]["POOL"] == 0


async def test_multi_command_over_tcp(state: MinerState, control: RecordingControl) -> None:
    async with serving(state, control) as server:
        reply = await exchange(server.port, b'{"command":"summary+devs+pools"}')
    assert list(reply) == ["summary", "devs", "pools", "id"]
    assert reply["pools"][0]["POOLS"][1]["URL"].startswith("stratum+ssl://")


async def test_privileged_denied_outside_the_allow_list(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control, allow=ELSEWHERE) as server:
        for request in (b"switchpool|1", b'{"command":"quit"}', b"ascset|0,freq,500"):
            reply = await exchange(server.port, request)
            assert reply["STATUS"][0]["Code"] == 45
        check = await exchange(server.port, b"check|restart")
    assert check["CHECK"] == [{"Exists": "Y", "Access": "N"}]
    await asyncio.sleep(0.1)
    assert control.calls == []


async def test_privileged_allowed_on_the_allow_list(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control) as server:
        switched = await exchange(server.port, b"switchpool|1")
        tuned = await exchange(server.port, b'{"command":"ascset","parameter":"0,freq,490"}')
        disabled = await exchange(server.port, b"disablepool|1")
    assert switched["STATUS"][0]["Msg"].startswith("Switching to pool 1:")
    assert tuned["STATUS"][0] == tuned["STATUS"][0] | {"STATUS": "S", "Msg": "ASC 0 set OK"}
    assert disabled["STATUS"][0]["Code"] == 48
    assert control.calls == [
        ("switch_pool", (1,)),
        ("set_frequency", ("ultra", 490.0)),
        ("enable_pool", (1, False)),
    ]


async def test_addpool_password_is_neither_echoed_nor_logged(
    state: MinerState, control: RecordingControl
) -> None:
    with capture_logs() as logs:
        async with serving(state, control) as server:
            reply = await exchange(
                server.port, b"addpool|stratum+tcp://new.example:3333,worker,s3cr3t-pass"
            )
    assert reply["STATUS"][0]["Msg"] == "Added pool 2: 'stratum+tcp://new.example:3333'"
    assert "s3cr3t" not in json.dumps(reply)
    assert "s3cr3t" not in repr(logs)
    name, (url, user, password) = control.calls[0]
    assert (name, url, user) == ("add_pool", "stratum+tcp://new.example:3333", "worker")
    assert password.reveal() == "s3cr3t-pass"  # type: ignore[attr-defined]


async def test_quit_replies_bye_before_acting(state: MinerState, control: RecordingControl) -> None:
    async with serving(state, control) as server:
        reply = await exchange(server.port, b"quit")
        assert reply == {"STATUS": "BYE"}
        await eventually(lambda: control.names == ["quit"])
        assert await exchange(server.port, b"restart") == {"STATUS": "RESTART"}
        await eventually(lambda: control.names == ["quit", "restart"])


async def test_control_refusal_becomes_an_error_status(
    state: MinerState, control: RecordingControl
) -> None:
    control.fail = InputError("pool", "pool 1 is disabled")
    async with serving(state, control) as server:
        reply = await exchange(server.port, b"switchpool|1")
    assert reply["STATUS"][0]["STATUS"] == "E"
    assert reply["STATUS"][0]["Msg"] == "switchpool failed: pool: pool 1 is disabled"
    assert reply["STATUS"][0]["Code"] == 27


async def test_a_crashing_control_does_not_kill_the_server(
    state: MinerState, control: RecordingControl
) -> None:
    control.fail = RuntimeError("boom with a secret inside")
    async with serving(state, control) as server:
        reply = await exchange(server.port, b"switchpool|1")
        assert reply["STATUS"][0]["Msg"] == "switchpool failed: internal error"
        assert (await exchange(server.port, b"version"))["VERSION"][0]["API"] == "3.7"


async def test_malformed_oversized_and_silent_clients(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control, read_timeout=0.3) as server:
        garbage = await exchange(server.port, b"\x00\xff{{{")
        huge = await exchange(server.port, b"{" + b" " * 10_000)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        silent = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        assert (await exchange(server.port, b"version"))["id"] == 1
    assert garbage["STATUS"][0]["STATUS"] == "E"
    assert huge["STATUS"][0]["Msg"] == "Request too large (limit 4096 bytes)"
    assert json.loads(silent[:-1])["STATUS"][0]["Msg"] == "Invalid command"


async def test_rate_limit_per_client(state: MinerState, control: RecordingControl) -> None:
    limiter = RateLimiter(rate=0.0, burst=2.0)
    async with serving(state, control, limiter=limiter) as server:
        replies = [await exchange(server.port, b"version") for _ in range(3)]
    assert [r["STATUS"][0]["STATUS"] for r in replies] == ["S", "S", "E"]
    assert replies[2]["STATUS"][0]["Msg"] == "Rate limit exceeded"


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("::ffff:127.0.0.1", True),
        ("10.1.2.3", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("unknown", False),
    ],
)
def test_client_allowed(peer: str, allowed: bool) -> None:
    allow = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("fd00::/8"))
    assert client_allowed(peer, allow) is allowed
    assert client_allowed("fd00::5", allow)
    assert not client_allowed("1.2.3.4", (ipaddress.ip_network("::/0"),))


# --------------------------------------------------------------------------- pyasic


async def test_pyasic_rpc_client_reads_version_summary_pools_and_multicommand(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control) as server:
        rpc = CGMinerRPCAPI("127.0.0.1", server.port)
        version = await rpc.version()
        summary = await rpc.summary()
        pools = await rpc.pools()
        stats = await rpc.stats()
        joined = await rpc.multicommand("summary", "devs", "pools")
    assert version["VERSION"][0]["CGMiner"] == "4.13.6"
    assert summary["SUMMARY"][0]["GHS 5s"] == 1500.0
    assert [pool["URL"] for pool in pools["POOLS"]] == [
        "stratum+tcp://pool.example.org:3333",
        "stratum+ssl://backup.example.net:4333",
    ]
    assert stats["STATS"][1]["Elapsed"] == 3600
    assert joined["multicommand"] is True
    assert joined["devs"][0]["DEVS"][0]["MHS 1m"] == 450_000.0


async def test_pyasic_cgminer_backend_gets_hashrate_uptime_and_pools(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(state, control) as server:
        miner = CGMiner("127.0.0.1")
        miner.rpc.port = server.port  # pyasic builds its RPC client on 4028
        data = await miner.get_data(include=["hashrate", "uptime", "pools", "fw_ver", "api_ver"])
    assert data.hashrate is not None
    assert float(data.hashrate) == pytest.approx(1.5e12)  # H/s for this backend
    assert data.uptime == 3600
    assert (data.fw_ver, data.api_ver) == ("4.13.6", "3.7")
    main, backup = data.pools
    assert (main.accepted, main.rejected, main.active, main.alive) == (120, 3, True, True)
    assert str(main.url) == "stratum+tcp://pool.example.org:3333"
    assert main.user == "bc1qminer.rig1"
    assert (backup.active, backup.index) == (False, 1)
