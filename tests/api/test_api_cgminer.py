"""The sans-IO cgminer API: parsing, every command's keys, privileges, fuzzing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_client.api import cgminer
from stratum_client.api.cgminer import Action, ActionKind, AscOption, RateLimiter, Reply, Request
from stratum_client.api.model import ControlOutcome, MinerState, PoolShares
from stratum_client.secrets import Secret

WHEN = 1_750_000_100
PRIVILEGED = ("switchpool", "enablepool", "disablepool", "addpool", "restart", "quit", "ascset")


def ask(state: MinerState, data: bytes | str, *, privileged: bool = False) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    result = cgminer.handle_bytes(raw, state, privileged=privileged, when=WHEN)
    assert isinstance(result, Reply), result
    encoded = result.encode()
    assert encoded.endswith(b"\x00")
    assert encoded.count(b"\x00") == 1
    return json.loads(encoded[:-1])


def plan(state: MinerState, data: str) -> Action:
    result = cgminer.handle_bytes(data.encode(), state, privileged=True, when=WHEN)
    assert isinstance(result, Action), result
    return result


def status(reply: Any) -> dict[str, Any]:
    return reply["STATUS"][0]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"summary", Request("summary")),
        (b"asc|1", Request("asc", "1")),
        (b"addpool|a,b,c|d", Request("addpool", "a,b,c|d")),
        (b"summary\n", Request("summary")),
        (b"summary\x00trailing", Request("summary")),
        (b'{"command":"pools"}', Request("pools")),
        (b'{"command":"asc","parameter":"0"}', Request("asc", "0")),
        (b'{"command":"asc","parameter":1}', Request("asc", "1")),
        (b'{"command":"asc","parameter":true}', Request("asc", None)),
        (b'{"command":"summary+devs"}', Request("summary+devs")),
    ],
)
def test_parse_request(data: bytes, expected: Request) -> None:
    assert cgminer.parse_request(data) == expected


@pytest.mark.parametrize(
    ("data", "code", "msg"),
    [
        (b"{not json", 23, "Invalid JSON"),
        (b"[1,2]", 14, "Invalid command"),
        (b"{}", 24, "Missing JSON 'command'"),
        (b'{"command":5}', 14, "Invalid command"),
        (b"\xff\xfe", 14, "Invalid command"),
        (b"{" + b"[" * 3000 + b"}", 23, "Invalid JSON"),
        (b"x" * 5000, 14, "Request too large (limit 4096 bytes)"),
    ],
)
def test_malformed_requests_get_an_error_status(
    state: MinerState, data: bytes, code: int, msg: str
) -> None:
    reply = ask(state, data)
    assert status(reply)["STATUS"] == "E"
    assert (status(reply)["Code"], status(reply)["Msg"]) == (code, msg)


def test_unknown_command_has_no_description(state: MinerState) -> None:
    reply = ask(state, "frobnicate")
    assert status(reply) == {"STATUS": "E", "When": WHEN, "Code": 14, "Msg": "Invalid command"}


@pytest.mark.parametrize(
    ("buffer", "complete"),
    [
        (b"", False),
        (b"summary", True),
        (b'{"command":', False),
        (b'{"command":"summary"}', True),
        (b'{"command":\x00', True),
        (b"{broken\n", True),
    ],
)
def test_request_complete(buffer: bytes, complete: bool) -> None:
    assert cgminer.request_complete(buffer) is complete


# --------------------------------------------------------------------------- read commands


def test_version_has_cgminer_api_and_product_keys(state: MinerState) -> None:
    reply = ask(state, '{"command":"version"}')
    assert status(reply) == {
        "STATUS": "S",
        "When": WHEN,
        "Code": 22,
        "Msg": "CGMiner versions",
        "Description": "stratum-client 0.1.0",
    }
    assert reply["VERSION"] == [{"CGMiner": "4.13.6", "API": "3.7", "stratum-client": "0.1.0"}]
    assert reply["id"] == 1


def test_summary_keys_units_and_unquoted_numbers(state: MinerState) -> None:
    reply = ask(state, "summary")
    assert status(reply)["Code"] == 11
    row = reply["SUMMARY"][0]
    assert list(row)[:6] == ["Elapsed", "MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m"]
    assert row["Elapsed"] == 3600
    assert row["MHS 1m"] == row["MHS 5s"] == 1_500_000.0
    assert row["MHS 5m"] == 1_480_000.0
    assert row["MHS 15m"] == 1_460_000.0
    assert row["MHS av"] == 1_440_000.0
    assert row["GHS 5s"] == 1500.0
    assert row["GHS av"] == 1440.0
    assert (row["Accepted"], row["Rejected"], row["Stale"], row["Hardware Errors"]) == (
        120,
        3,
        1,
        3,
    )
    assert row["Best Share"] == 1_234_567
    assert row["Difficulty Accepted"] == 120 * 2048.0
    assert row["Utility"] == 2.0
    assert row["Pool Rejected%"] == pytest.approx(3 / 124 * 100, abs=1e-4)
    assert row["Get Failures"] == 1
    for key in ("Found Blocks", "Discarded", "Work Utility", "Device Hardware%", "Last getwork"):
        assert key in row
    assert all(isinstance(value, int | float) for value in row.values())


def test_pools_keys_status_and_url_schemes(state: MinerState) -> None:
    reply = ask(state, "pools")
    assert (status(reply)["Code"], status(reply)["Msg"]) == (7, "2 Pool(s)")
    main, backup = reply["POOLS"]
    assert main["POOL"] == 0
    assert main["URL"] == "stratum+tcp://pool.example.org:3333"
    assert main["Status"] == "Alive"
    assert main["Stratum Active"] is True
    assert main["Stratum URL"] == "pool.example.org:3333"
    assert main["Stratum Difficulty"] == 2048.0
    assert main["Has Vmask"] is True
    assert (main["Accepted"], main["Rejected"], main["Stale"]) == (120, 3, 1)
    assert main["User"] == "bc1qminer.rig1"
    assert (main["Get Failures"], main["Remote Failures"]) == (1, 0)
    assert backup["URL"] == "stratum+ssl://backup.example.net:4333"
    assert backup["Stratum Active"] is False
    assert "password" not in json.dumps(reply).lower()


def test_pools_share_figures_come_from_each_pools_own_shares(
    make_state: Callable[..., MinerState],
) -> None:
    figures = PoolShares(
        index=0,
        accepted_difficulty=245760.5,
        rejected_difficulty=6144.0,
        best_share=1.5e9,
        last_share_at=1_700_000_123.75,
        diff1_shares=251904.25,
    )
    main, backup = ask(make_state(pool_shares=(figures,)), "pools")["POOLS"]
    assert main["Last Share Time"] == 1_700_000_123
    assert (main["Difficulty Accepted"], main["Difficulty Rejected"]) == (245760.5, 6144.0)
    assert main["Diff1 Shares"] == 251904.25
    assert main["Best Share"] == 1_500_000_000
    # a pool the daemon gave no figures for shows cgminer's zeros
    assert (backup["Last Share Time"], backup["Diff1 Shares"]) == (0, 0.0)
    assert (backup["Difficulty Accepted"], backup["Best Share"]) == (0.0, 0)


@pytest.mark.parametrize(
    ("pool_state", "shown"),
    [
        ("active", "Alive"),
        ("standby", "Alive"),
        ("connecting", "Dead"),
        ("failed", "Dead"),
        ("disabled", "Disabled"),
    ],
)
def test_pool_status_words(
    make_state: Callable[..., MinerState], pool_state: str, shown: str
) -> None:
    base = make_state()
    pool = base.pools[0].__class__(**{**_fields(base.pools[0]), "state": pool_state})
    reply = ask(make_state(pools=(pool,)), "pools")
    assert reply["POOLS"][0]["Status"] == shown


def _fields(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_devs_rows(state: MinerState) -> None:
    reply = ask(state, "devs")
    assert (status(reply)["Code"], status(reply)["Msg"]) == (9, "2 ASC(s)")
    ultra, gamma = reply["DEVS"]
    assert (ultra["ASC"], ultra["ID"], ultra["Name"], ultra["Enabled"]) == (0, 0, "BM1366", "Y")
    assert ultra["Status"] == "Alive"
    assert ultra["Temperature"] == 55.5
    assert ultra["MHS 1m"] == 450_000.0
    assert ultra["Hardware Errors"] == 3
    assert ultra["Diff1 Work"] == 1_000_000.0
    assert ultra["Device Name"] == "ultra"
    assert gamma["Status"] == "Sick"
    assert gamma["Temperature"] == 0.0


def test_edevs_skips_disabled_devices(make_state: Callable[..., MinerState]) -> None:
    base = make_state()
    disabled = base.devices[1].__class__(**{**_fields(base.devices[1]), "enabled": False})
    reply = ask(make_state(devices=(base.devices[0], disabled)), "edevs")
    assert [row["Device Name"] for row in reply["DEVS"]] == ["ultra"]


def test_no_devices_and_no_pools(make_state: Callable[..., MinerState]) -> None:
    empty = make_state(devices=(), pools=())
    assert status(ask(empty, "devs"))["Msg"] == "No ASCs"
    assert status(ask(empty, "pools"))["Msg"] == "No pools"
    assert status(ask(empty, "asc|0"))["Msg"] == "No ASCs"
    assert len(ask(empty, "stats")["STATS"]) >= 2


def test_stats_has_two_entries_with_elapsed_first(state: MinerState) -> None:
    reply = ask(state, "stats")
    rows = reply["STATS"]
    assert len(rows) == 2 + 2 + 2
    assert rows[1]["Elapsed"] == 3600
    assert all("Elapsed" in row for row in rows)
    assert [row["STATS"] for row in rows] == list(range(len(rows)))
    assert rows[2]["Chips Alive"] == 1
    assert rows[3]["Chip1 Nonces"] == 10


def test_asc_asccount_check_devdetails_config(state: MinerState) -> None:
    asc = ask(state, "asc|1")
    assert (status(asc)["Code"], status(asc)["Msg"]) == (106, "ASC1")
    assert asc["ASC"][0]["Device Name"] == "gamma.2"
    assert status(ask(state, "asc|7"))["Msg"] == "Invalid ASC id 7 - range is 0 - 1"
    assert status(ask(state, "asc|x"))["Code"] == 107
    assert status(ask(state, "asc"))["Msg"] == "Missing device id parameter"
    assert ask(state, "asccount")["ASCS"] == [{"Count": 2}]
    assert ask(state, "check|summary")["CHECK"] == [{"Exists": "Y", "Access": "Y"}]
    assert ask(state, "check|quit")["CHECK"] == [{"Exists": "Y", "Access": "N"}]
    assert ask(state, "check|quit", privileged=True)["CHECK"] == [{"Exists": "Y", "Access": "Y"}]
    assert ask(state, "check|nope")["CHECK"] == [{"Exists": "N", "Access": "N"}]
    assert status(ask(state, "check"))["Msg"] == "Missing check cmd"
    details = ask(state, "devdetails")["DEVDETAILS"]
    assert [row["Model"] for row in details] == ["BM1366", "BM1370"]
    config = ask(state, "config")["CONFIG"][0]
    assert (config["ASC Count"], config["Pool Count"], config["Strategy"]) == (2, 2, "Failover")


# --------------------------------------------------------------------------- multi-command


def test_multi_command_wraps_each_section_like_cgminer(state: MinerState) -> None:
    reply = ask(state, '{"command":"summary+devs"}')
    assert list(reply) == ["summary", "devs", "id"]
    assert isinstance(reply["summary"], list)
    assert len(reply["summary"]) == 1
    summary = reply["summary"][0]
    assert summary["STATUS"][0]["Code"] == 11
    assert summary["SUMMARY"][0]["GHS 5s"] == 1500.0
    assert summary["id"] == 1
    assert reply["devs"][0]["DEVS"][1]["Device Name"] == "gamma.2"


def test_multi_command_refuses_privileged_and_marks_unknown(state: MinerState) -> None:
    reply = ask(state, "summary+quit+bogus+summary", privileged=True)
    assert list(reply) == ["summary", "quit", "bogus", "id"]
    assert reply["quit"][0]["STATUS"][0]["Msg"] == "Access denied to 'quit' command"
    assert reply["bogus"][0]["STATUS"][0]["Msg"] == "Invalid command"


def test_multi_command_has_a_cap(state: MinerState) -> None:
    names = "+".join(f"c{i}" for i in range(cgminer.MAX_JOINED + 1))
    assert status(ask(state, names))["Msg"] == "Invalid command"


# --------------------------------------------------------------------------- privileged


@pytest.mark.parametrize("command", PRIVILEGED)
def test_privileged_commands_are_denied_to_others(state: MinerState, command: str) -> None:
    reply = ask(state, f"{command}|0,freq,500")
    assert status(reply)["STATUS"] == "E"
    assert status(reply)["Code"] == 45
    assert status(reply)["Msg"] == f"Access denied to '{command}' command"


def test_pool_actions_are_planned_and_validated(state: MinerState) -> None:
    assert plan(state, "switchpool|1") == Action(
        ActionKind.SWITCH_POOL, index=1, target="stratum+tls://backup.example.net:4333"
    )
    assert plan(state, "disablepool|1").kind is ActionKind.DISABLE_POOL
    already = cgminer.handle_bytes(b"enablepool|0", state, privileged=True, when=WHEN)
    assert isinstance(already, Reply)
    assert already.body["STATUS"][0]["STATUS"] == "I"  # type: ignore[index]
    for bad, msg in [
        ("switchpool", "Missing pool id parameter"),
        ("switchpool|2", "Invalid pool id 2 - range is 0 - 1"),
        ("switchpool|-1", "Invalid pool id -1 - range is 0 - 1"),
    ]:
        assert status(ask(state, bad, privileged=True))["Msg"] == msg


def test_addpool_parses_escapes_and_keeps_the_password_secret(state: MinerState) -> None:
    action = plan(state, r"addpool|stratum+tcp://p.example:3333,us\,er,pa\\ss\,word")
    assert action.kind is ActionKind.ADD_POOL
    assert (action.target, action.user) == ("stratum+tcp://p.example:3333", "us,er")
    assert action.password == Secret("pa\\ss,word")
    assert "pa\\ss" not in repr(action)
    reply = ask(state, "addpool|url,user,hunter2,extra", privileged=True)
    assert status(reply)["Code"] == 53
    assert "hunter2" not in json.dumps(reply)
    assert status(ask(state, "addpool", privileged=True))["Msg"] == "Missing addpool details"


def test_ascset_plans_a_frequency_change(state: MinerState) -> None:
    action = plan(state, "ascset|1,freq,500")
    assert action == Action(
        ActionKind.ASC_SET, index=1, target="gamma.2", option=AscOption.FREQ, value=500.0
    )
    assert status(ask(state, "ascset|0,help", privileged=True))["STATUS"] == "I"
    assert status(ask(state, "ascset|0", privileged=True))["Code"] == 116
    for bad in ("ascset|0,freq", "ascset|0,freq,nan", "ascset|0,freq,5000", "ascset|0,volt,1"):
        assert status(ask(state, bad, privileged=True))["Code"] == 120, bad
    assert status(ask(state, "ascset|9,freq,500", privileged=True))["Code"] == 107


def test_action_replies(state: MinerState) -> None:
    ok = cgminer.action_reply(
        plan(state, "switchpool|1"), ControlOutcome(True), when=WHEN, version="0.1.0"
    )
    assert ok.body["STATUS"][0]["Msg"] == (  # type: ignore[index]
        "Switching to pool 1:'stratum+tls://backup.example.net:4333'"
    )
    added = cgminer.action_reply(
        plan(state, "addpool|u,v,w"), ControlOutcome(True, value=2), when=WHEN, version="0.1.0"
    )
    assert added.body["STATUS"][0]["Msg"] == "Added pool 2: 'u'"  # type: ignore[index]
    failed = cgminer.action_reply(
        plan(state, "ascset|0,freq,900"),
        ControlOutcome(False, "frequency: 900 MHz is above 800", rejected=True),
        when=WHEN,
        version="0.1.0",
    )
    assert failed.body["STATUS"][0]["STATUS"] == "E"  # type: ignore[index]
    assert failed.body["STATUS"][0]["Code"] == 120  # type: ignore[index]
    assert failed.body["STATUS"][0]["Msg"] == (  # type: ignore[index]
        "ASC 0 set failed: frequency: 900 MHz is above 800"
    )
    restart = cgminer.action_reply(
        Action(ActionKind.RESTART), ControlOutcome(True), when=0, version=""
    )
    assert restart.encode() == b'{"STATUS":"RESTART"}\x00'
    bye = cgminer.action_reply(Action(ActionKind.QUIT), ControlOutcome(True), when=0, version="")
    assert bye.encode() == b'{"STATUS":"BYE"}\x00'
    assert Action(ActionKind.QUIT).replies_first


# --------------------------------------------------------------------------- rate limit


def test_rate_limiter_bursts_refills_and_forgets() -> None:
    limiter = RateLimiter(rate=1.0, burst=2.0, max_clients=2)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("a", 1.0)
    assert not limiter.allow("a", 1.0)
    limiter.allow("b", 1.0)
    limiter.allow("c", 1.0)  # evicts "a", the least recently seen
    assert limiter.allow("a", 1.0)


# --------------------------------------------------------------------------- fuzzing

COMMAND_NAMES = [*cgminer.COMMANDS, "", "+", "summary+", "+devs", "a+quit"]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=6000), privileged=st.booleans())
def test_fuzz_raw_bytes_never_crash(state: MinerState, data: bytes, privileged: bool) -> None:
    result = cgminer.handle_bytes(data, state, privileged=privileged, when=WHEN)
    if isinstance(result, Action):
        assert privileged
    else:
        json.loads(result.encode()[:-1])


@settings(max_examples=400, deadline=None)
@given(
    command=st.sampled_from(COMMAND_NAMES) | st.text(max_size=40),
    parameter=st.none() | st.text(max_size=80) | st.integers() | st.floats(),
    as_json=st.booleans(),
)
def test_fuzz_structured_requests_never_act_without_privilege(
    state: MinerState, command: str, parameter: object, as_json: bool
) -> None:
    if as_json:
        data = json.dumps({"command": command, "parameter": parameter}).encode()
    else:
        data = (command if parameter is None else f"{command}|{parameter}").encode()
    result = cgminer.handle_bytes(data, state, privileged=False, when=WHEN)
    assert isinstance(result, Reply)
    body = json.loads(result.encode()[:-1])
    assert "STATUS" in body or body.get("id") == 1
    privileged = cgminer.handle_bytes(data, state, privileged=True, when=WHEN)
    if isinstance(privileged, Action):
        assert privileged.kind.value == command.split("|", maxsplit=1)[0]
