"""The sans-IO AxeOS-compatible REST core: routes, fields, auth, fuzzing (HTTP parsing is
aiohttp's; the server tests send it bad requests over real sockets)."""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_client.api import rest
from stratum_client.api.model import BoardReadout, ControlOutcome, MinerState, MiningState
from stratum_client.api.rest import (
    HttpRequest,
    HttpResponse,
    RestAction,
    RestActionKind,
    StatisticsHistory,
)
from stratum_client.secrets import Secret

TOKEN = Secret("correct-horse-battery")
AUTH = {"authorization": "Bearer correct-horse-battery"}

# Every key pyasic's ESPMiner backend and its MinerConfig.from_espminer read.
PYASIC_KEYS = {
    "hashRate", "power", "uptimeSeconds", "temp", "vrTemp", "asicCount", "voltage", "fanrpm",
    "hostname", "version", "macAddr", "smallCoreCount", "frequency", "stratumURL",
    "stratumPort", "stratumUser", "autofanspeed", "fanspeed", "ASICModel",
}  # fmt: skip


def route(
    state: MinerState,
    method: str,
    path: str,
    *,
    body: object = None,
    headers: dict[str, str] | None = None,
    token: Secret | None = None,
    history: StatisticsHistory | None = None,
) -> HttpResponse | RestAction:
    raw = b"" if body is None else json.dumps(body).encode()
    split = path.partition("?")
    query = dict(part.split("=", 1) for part in split[2].split("&") if "=" in part)
    request = HttpRequest(method, split[0], query, headers or {}, len(raw), raw)
    return rest.dispatch(request, state, token=token, history=history or StatisticsHistory())


def get_json(state: MinerState, path: str, **options: Any) -> Any:
    response = route(state, "GET", path, **options)
    assert isinstance(response, HttpResponse)
    assert response.status == 200, response.body
    return json.loads(response.body)


def status_of(response: HttpResponse | RestAction) -> int:
    assert isinstance(response, HttpResponse), response
    return response.status


# --------------------------------------------------------------------------- read endpoints


def test_system_info_has_every_key_pyasic_reads(state: MinerState) -> None:
    info = get_json(state, "/api/system/info")
    assert set(info) >= PYASIC_KEYS
    assert all(value is not None for value in info.values())


def test_system_info_values_and_units(state: MinerState) -> None:
    info = get_json(state, "/api/system/info")
    assert info["hashRate"] == 1500.0  # GH/s
    assert info["expectedHashrate"] == pytest.approx((485 * 894 * 1 + 525 * 2040 * 2) / 1000, 0.01)
    assert info["power"] == 45.5
    assert info["temp"] == 55.5  # only the BM1366 chain reports one
    assert info["coreVoltage"] == 1200
    assert info["frequency"] == pytest.approx((485 + 2 * 525) / 3, abs=0.01)
    # a mixed host names both models; the count is every chip, per model in asicModels
    assert (info["ASICModel"], info["asicCount"], info["smallCoreCount"]) == (
        "BM1366+BM1370",
        3,
        0,
    )
    assert info["asicModels"] == [
        {"model": "BM1366", "count": 1, "smallCoreCount": 894},
        {"model": "BM1370", "count": 2, "smallCoreCount": 2040},
    ]
    assert (info["sharesAccepted"], info["sharesRejected"]) == (120, 3)
    assert info["sharesRejectedReasons"] == [
        {"message": "Job not found", "count": 2},
        {"message": "Low difficulty", "count": 1},
    ]
    assert info["bestDiff"] == info["bestSessionDiff"] == "1.23M"
    assert info["uptimeSeconds"] == 3600
    assert (info["stratumURL"], info["stratumPort"]) == ("pool.example.org", 3333)
    assert info["stratumUser"] == "bc1qminer.rig1"
    assert (info["fallbackStratumURL"], info["fallbackStratumPort"]) == ("backup.example.net", 4333)
    assert info["isUsingFallbackStratum"] == 0
    assert info["hostname"] == "rig1"
    assert info["macAddr"] == "00:00:00:00:00:00"
    assert info["miningPaused"] is False
    assert info["errorPercentage"] == pytest.approx(3 / (9000 + 12010 + 3) * 100, abs=0.01)
    assert "stratumPassword" not in info


def test_system_info_on_fallback_paused_and_empty(make_state: Callable[..., MinerState]) -> None:
    base = make_state()
    first, second = base.pools
    swapped = (
        first.__class__(**{**_fields(first), "state": "failed"}),
        second.__class__(**{**_fields(second), "state": "active"}),
    )
    info = get_json(make_state(pools=swapped, mining=MiningState.PAUSED), "/api/system/info")
    assert info["isUsingFallbackStratum"] == 1
    assert info["miningPaused"] is True
    empty = get_json(make_state(devices=(), pools=(), power_w=None), "/api/system/info")
    assert (empty["ASICModel"], empty["asicCount"], empty["hashRate"]) == ("", 0, 1500.0)
    assert (empty["stratumURL"], empty["stratumPort"], empty["power"]) == ("", 0, 0.0)


def test_single_model_host_keeps_the_axeos_fields(make_state: Callable[..., MinerState]) -> None:
    base = make_state()
    devices = tuple(dataclasses.replace(d, model="BM1397") for d in base.devices)
    info = get_json(make_state(devices=devices), "/api/system/info")
    assert (info["ASICModel"], info["asicCount"], info["smallCoreCount"]) == ("BM1397", 3, 672)
    assert info["asicModels"] == [{"model": "BM1397", "count": 3, "smallCoreCount": 672}]


def _fields(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_asic_endpoint(state: MinerState) -> None:
    asic = get_json(state, "/api/system/asic")
    assert asic["ASICModel"] == "BM1366+BM1370"
    assert asic["asicCount"] == 3
    assert asic["defaultFrequency"] == 485
    assert asic["frequencyOptions"] == [485, 525]
    assert asic["defaultVoltage"] == 1200


def test_index_page_mentions_axeos_honestly(state: MinerState) -> None:
    response = route(state, "GET", "/")
    assert isinstance(response, HttpResponse)
    page = response.body.decode()
    assert response.content_type.startswith("text/html")
    assert "AxeOS" in page
    assert "This is not AxeOS" in page


def test_head_options_404_405(state: MinerState) -> None:
    head = route(state, "HEAD", "/api/system/info")
    assert status_of(head) == 200
    options = route(state, "OPTIONS", "/api/system/info")
    assert status_of(options) == 204
    assert ("Allow", "GET, HEAD, OPTIONS") in options.headers  # type: ignore[union-attr]
    assert status_of(route(state, "GET", "/nope")) == 404
    wrong = route(state, "DELETE", "/api/system/info")
    assert status_of(wrong) == 405
    assert ("Allow", "GET, HEAD, OPTIONS") in wrong.headers  # type: ignore[union-attr]


def test_statistics_history_and_columns(make_state: Callable[..., MinerState]) -> None:
    history = StatisticsHistory(limit=2)
    for elapsed in (10.0, 20.0, 30.0):
        history.record(make_state(elapsed=elapsed))
    assert len(history) == 2
    everything = get_json(make_state(elapsed=31.0), "/api/system/statistics", history=history)
    assert everything["labels"] == [*rest.STAT_LABELS, "timestamp"]
    assert everything["currentTimestamp"] == 31_000
    assert [row[-1] for row in everything["statistics"]] == [20_000, 30_000]
    chosen = get_json(
        make_state(), "/api/system/statistics?columns=power,bogus,hashrate", history=history
    )
    assert chosen["labels"] == ["hashrate", "power", "timestamp"]
    assert chosen["statistics"][0] == [1500.0, 45.5, 20_000]


def test_format_difficulty() -> None:
    cases = {0: "0", 0.4: "0", 999: "999", 1000: "1K", 12_345: "12.3K", 999_999: "1M",
             4.56e9: "4.56G", 7.1e12: "7.1T", float("inf"): "0"}  # fmt: skip
    for value, text in cases.items():
        assert rest.format_difficulty(value) == text


# --------------------------------------------------------------------------- writes


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/api/system", {"frequency": 500}),
        ("POST", "/api/system/restart", None),
        ("POST", "/api/system/pause", None),
        ("POST", "/api/system/resume", None),
    ],
)
def test_writes_need_a_configured_token_and_the_right_bearer(
    state: MinerState, method: str, path: str, body: object
) -> None:
    assert status_of(route(state, method, path, body=body)) == 403
    assert status_of(route(state, method, path, body=body, headers=AUTH)) == 403
    missing = route(state, method, path, body=body, token=TOKEN)
    assert status_of(missing) == 401
    assert ("WWW-Authenticate", "Bearer") in missing.headers  # type: ignore[union-attr]
    wrong = {"authorization": "Bearer correct-horse-battery-staple"}
    assert status_of(route(state, method, path, body=body, headers=wrong, token=TOKEN)) == 401
    basic = {"authorization": "Basic correct-horse-battery"}
    assert status_of(route(state, method, path, body=body, headers=basic, token=TOKEN)) == 401
    allowed = route(state, method, path, body=body, headers=AUTH, token=TOKEN)
    assert isinstance(allowed, RestAction)


def test_patch_frequency_targets_every_device(state: MinerState) -> None:
    action = route(
        state, "PATCH", "/api/system", body={"frequency": 490}, headers=AUTH, token=TOKEN
    )
    assert action == RestAction(RestActionKind.SET_FREQUENCY, 490.0, ("ultra", "gamma.2"))


@pytest.mark.parametrize(
    "body",
    [{"frequency": 0}, {"frequency": "500"}, {"frequency": True}, {"frequency": 500, "ssid": "x"},
     {}, [500], "x"],
)  # fmt: skip
def test_patch_rejects_what_it_cannot_apply(state: MinerState, body: object) -> None:
    response = route(state, "PATCH", "/api/system", body=body, headers=AUTH, token=TOKEN)
    assert status_of(response) == 400


def test_action_responses() -> None:
    action = RestAction(RestActionKind.SET_FREQUENCY, 490.0, ("a", "b"))
    ok = rest.action_response(action, [ControlOutcome(True, value=487.5)] * 2)
    assert (ok.status, json.loads(ok.body)["frequency"]) == (200, {"a": 487.5, "b": 487.5})
    refused = rest.action_response(action, [ControlOutcome(False, "too fast", rejected=True)])
    assert (refused.status, json.loads(refused.body)) == (400, {"error": "too fast"})
    broken = rest.action_response(action, [ControlOutcome(False, "internal error")])
    assert broken.status == 500
    restart = rest.action_response(RestAction(RestActionKind.RESTART), [ControlOutcome(True)])
    assert json.loads(restart.body) == {"message": "System will restart shortly."}


def _on_a_board(state: MinerState) -> MinerState:
    """``state`` with its first device on a Bitaxe Gamma."""
    first = dataclasses.replace(state.devices[0], board=BoardReadout("bitaxe-gamma", "mining"))
    return dataclasses.replace(state, devices=(first, *state.devices[1:]))


def test_patch_board_settings_go_to_the_chains_on_a_board(state: MinerState) -> None:
    boarded = _on_a_board(state)
    body = {"fanspeed": 55, "autofanspeed": 0, "coreVoltage": 1200, "frequency": 490}
    action = route(boarded, "PATCH", "/api/system", body=body, headers=AUTH, token=TOKEN)
    board = boarded.devices[0].name
    assert action == RestAction(
        RestActionKind.SET_SYSTEM, 490.0, tuple(d.name for d in state.devices),
        sets_fan=True, fan_percent=55.0, core_voltage_v=1.2, boards=(board,),
    )  # fmt: skip
    auto = route(boarded, "PATCH", "/api/system", body={"autofanspeed": 1}, headers=AUTH,
                 token=TOKEN)  # fmt: skip
    assert isinstance(auto, RestAction)
    assert auto.calls() == [("fanspeed", board)]
    assert (auto.sets_fan, auto.fan_percent) == (True, None)
    unauthorised = route(boarded, "PATCH", "/api/system", body={"fanspeed": 50}, token=TOKEN)
    assert status_of(unauthorised) == 401


@pytest.mark.parametrize(
    ("body", "on_board"),
    [({"fanspeed": 50}, False), ({"coreVoltage": 1200}, False), ({"fanspeed": "50"}, True),
     ({"autofanspeed": 2}, True), ({"autofanspeed": True}, True), ({"autofanspeed": 0}, True),
     ({"coreVoltage": -1}, True), ({"coreVoltage": None}, True), ({"fanspeed": None}, True)],
)  # fmt: skip
def test_patch_rejects_bad_board_settings(
    state: MinerState, body: dict[str, object], on_board: bool
) -> None:
    target = _on_a_board(state) if on_board else state
    response = route(target, "PATCH", "/api/system", body=body, headers=AUTH, token=TOKEN)
    assert status_of(response) == 400


def test_board_setting_responses() -> None:
    action = RestAction(RestActionKind.SET_SYSTEM, sets_fan=True, core_voltage_v=1.2,
                        boards=("gamma",))  # fmt: skip
    ok = rest.action_response(
        action, [ControlOutcome(True, value=None), ControlOutcome(True, value=1.2)]
    )
    assert json.loads(ok.body) == {
        "message": "settings applied", "fanspeed": {"gamma": "auto"},
        "coreVoltage": {"gamma": 1200},
    }  # fmt: skip
    limit = "core_voltage: 1.5 is outside bitaxe-gamma's limits 1..1.3"
    refused = rest.action_response(action, [ControlOutcome(False, limit, rejected=True)])
    assert (refused.status, json.loads(refused.body)) == (400, {"error": limit})


# --------------------------------------------------------------------------- fuzzing

header_name = st.text(string.ascii_letters + "-_!#", min_size=1, max_size=20)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PATCH", "PUT", "OPTIONS", "DELETE", "X"]),
    path=st.sampled_from([*rest.ROUTES, "/api", "/api/system/", "//", "/%00"])
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map("/".__add__),
    headers=st.dictionaries(header_name, header_value, max_size=6),
    body=st.binary(max_size=200) | st.builds(lambda f: json.dumps({"frequency": f}).encode(),
                                             st.floats() | st.integers()),
    authorization=st.none() | st.text(max_size=40) | st.just("Bearer correct-horse-battery"),
)  # fmt: skip
def test_fuzz_requests_never_write_without_the_token(
    state: MinerState,
    *,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    authorization: str | None,
) -> None:
    fields = {name.lower(): value for name, value in headers.items()}
    fields.pop("authorization", None)
    if authorization is not None and authorization.isprintable():
        fields["authorization"] = authorization
    request = HttpRequest(method, path, {}, fields, len(body), body)
    for token in (None, Secret("another-token")):
        outcome = rest.dispatch(request, state, token=token, history=StatisticsHistory())
        assert isinstance(outcome, HttpResponse)
        if outcome.content_type == "application/json" and outcome.body:
            json.loads(outcome.body)
    outcome = rest.dispatch(request, state, token=TOKEN, history=StatisticsHistory())
    if isinstance(outcome, RestAction):
        assert authorization == "Bearer correct-horse-battery"
