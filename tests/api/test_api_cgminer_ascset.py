"""cgminer ``ascset`` for a chain on a board: ``fan,PERCENT``, ``fan,auto`` and
``voltage,VOLTS`` beside ``freq,MHZ``, checked against the board's limits in the state
before anything reaches ``MinerControl``; planned (sans-IO) and over real TCP.
A live daemon's emulated board is set this way in tests/daemon/test_daemon_board_writes.py."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from stratum_client.api.cgminer import Action, ActionKind, AscOption
from stratum_client.api.model import BoardReadout, MinerState
from stratum_client.boards.errors import BoardError
from tests.api.test_api_cgminer import ask, plan, status
from tests.api.test_api_cgminer_server import ELSEWHERE, exchange, serving

if TYPE_CHECKING:
    from tests.api.conftest import RecordingControl

GAMMA = BoardReadout("bitaxe-gamma", "mining", fan_limits=(0.0, 100.0),
                     core_voltage_limits=(1.0, 1.3))  # fmt: skip


def with_board(state: MinerState, board: BoardReadout) -> MinerState:
    """``state`` with its second chain (``gamma.2``) on ``board``."""
    devices = (state.devices[0], dataclasses.replace(state.devices[1], board=board))
    return dataclasses.replace(state, devices=devices)


def test_ascset_plans_fan_and_voltage_for_a_chain_on_a_board(state: MinerState) -> None:
    board_state = with_board(state, GAMMA)
    expected = [
        ("ascset|1,fan,35", AscOption.FAN, 35.0),
        ("ascset|1,FAN, 0", AscOption.FAN, 0.0),
        ("ascset|1,fan,auto", AscOption.FAN, None),
        ("ascset|1,voltage,1.2", AscOption.VOLTAGE, 1.2),
        ("ascset|1,voltage,1.3", AscOption.VOLTAGE, 1.3),
    ]
    for request, option, value in expected:
        assert plan(board_state, request) == Action(
            ActionKind.ASC_SET, index=1, target="gamma.2", option=option, value=value
        ), request
    helped = status(ask(board_state, "ascset|1,help", privileged=True))["Msg"]
    assert "fan,PERCENT" in helped
    assert "voltage,VOLTS" in helped


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        ("ascset|1,fan,150", "ASC 1 set failed: fan 150 is outside bitaxe-gamma's limits 0..100"),
        ("ascset|1,fan,-5", "ASC 1 set failed: fan -5 is outside bitaxe-gamma's limits 0..100"),
        ("ascset|1,voltage,1.5",
         "ASC 1 set failed: voltage 1.5 is outside bitaxe-gamma's limits 1..1.3"),
        ("ascset|1,voltage,1150",  # millivolts, as AxeOS takes them: refused, not 1150 V
         "ASC 1 set failed: voltage 1150 is outside bitaxe-gamma's limits 1..1.3"),
        ("ascset|1,fan", "ASC 1 set failed: use fan,PERCENT with PERCENT from 0 to 100 "
         "or fan,auto"),
        ("ascset|1,voltage,inf", "ASC 1 set failed: use voltage,VOLTS with VOLTS from 1 to 1.3"),
        ("ascset|0,fan,50",
         "ASC 0 set failed: ultra reports no board: fan needs a chain on a board"),
        ("ascset|0,voltage,1.2",
         "ASC 0 set failed: ultra reports no board: voltage needs a chain on a board"),
    ],
)  # fmt: skip
def test_ascset_refuses_what_the_board_does_not_allow(
    state: MinerState, request_: str, why: str
) -> None:
    reply = status(ask(with_board(state, GAMMA), request_, privileged=True))
    assert (reply["STATUS"], reply["Code"], reply["Msg"]) == ("E", 120, why)


def test_ascset_refuses_a_setting_the_board_has_not(state: MinerState) -> None:
    piaxe = with_board(state, BoardReadout("piaxe", "mining"))  # frequency only
    for request, option in (("ascset|1,fan,50", "fan"), ("ascset|1,fan,auto", "fan"),
                            ("ascset|1,voltage,1.2", "voltage")):  # fmt: skip
        reply = status(ask(piaxe, request, privileged=True))
        assert (reply["Code"], reply["Msg"]) == (
            120,
            f"ASC 1 set failed: piaxe cannot set its {option}",
        )
    assert plan(piaxe, "ascset|1,freq,500").option is AscOption.FREQ


# --------------------------------------------------------------------------- over TCP


async def test_fan_and_voltage_over_tcp_reach_the_control_for_an_allowed_client(
    state: MinerState, control: RecordingControl
) -> None:
    async with serving(with_board(state, GAMMA), control) as server:
        fan = await exchange(server.port, b"ascset|1,fan,40")
        volts = await exchange(server.port, b'{"command":"ascset","parameter":"1,voltage,1.2"}')
        auto = await exchange(server.port, b"ascset|1,fan,auto")
        too_hot = await exchange(server.port, b"ascset|1,voltage,1.45")
        bare = await exchange(server.port, b"ascset|0,fan,40")
    for reply in (fan, volts, auto):
        assert (
            reply["STATUS"][0] | {"STATUS": "S", "Code": 119, "Msg": "ASC 1 set OK"}
            == (reply["STATUS"][0])
        )
    assert (too_hot["STATUS"][0]["Code"], too_hot["STATUS"][0]["Msg"]) == (
        120,
        "ASC 1 set failed: voltage 1.45 is outside bitaxe-gamma's limits 1..1.3",
    )
    assert bare["STATUS"][0]["Msg"] == (
        "ASC 0 set failed: ultra reports no board: fan needs a chain on a board"
    )
    assert control.calls == [  # the refused ones never reached it
        ("set_fan", ("gamma.2", 40.0)),
        ("set_core_voltage", ("gamma.2", 1.2)),
        ("set_fan", ("gamma.2", None)),
    ]


async def test_fan_and_voltage_are_privileged(state: MinerState, control: RecordingControl) -> None:
    async with serving(with_board(state, GAMMA), control, allow=ELSEWHERE) as server:
        for request in (b"ascset|1,fan,40", b"ascset|1,voltage,1.2", b"ascset|1,fan,auto"):
            reply = await exchange(server.port, request)
            assert (reply["STATUS"][0]["STATUS"], reply["STATUS"][0]["Code"]) == ("E", 45)
    assert control.calls == []


async def test_the_boards_own_refusal_is_an_ascset_error_with_its_words(
    state: MinerState, control: RecordingControl
) -> None:
    """The state said the board was there; the daemon finds it between sessions."""
    control.fail = BoardError("board 'gamma.2' is not up (last error: ControlLinkError: gone)")
    async with serving(with_board(state, GAMMA), control) as server:
        reply = await exchange(server.port, b"ascset|1,voltage,1.2")
    assert (reply["STATUS"][0]["STATUS"], reply["STATUS"][0]["Code"]) == ("E", 120)
    assert reply["STATUS"][0]["Msg"] == (
        "ASC 1 set failed: board 'gamma.2' is not up (last error: ControlLinkError: gone)"
    )
    assert control.calls == [("set_core_voltage", ("gamma.2", 1.2))]
