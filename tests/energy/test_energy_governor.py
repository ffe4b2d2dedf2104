"""Governor policies: always, surplus, carbon, price, combinations, fail-safes, dwell."""

from __future__ import annotations

import pytest

from stratum_client.energy.governor import (
    Decision,
    FailSafe,
    Governor,
    Mode,
    Policy,
    SurplusPolicy,
    ThresholdPolicy,
)
from stratum_client.energy.power import CHIP_POWER, DevicePower
from stratum_client.energy.signals import SignalBoard, SignalSpec

GAMMA = DevicePower("gamma", CHIP_POWER["BM1370"], 1, 262.5, 525.0)
ULTRA = DevicePower("ultra", CHIP_POWER["BM1366"], 1, 243.75, 485.0)
SPECS = [
    SignalSpec("surplus", "home/surplus", max_age=30.0),
    SignalSpec("grid_import", "home/import", max_age=30.0),
    SignalSpec("carbon_intensity", "home/carbon", max_age=900.0),
    SignalSpec("price", "home/price", max_age=900.0),
    SignalSpec("power.gamma", "plug/gamma", max_age=30.0),
]


def make(
    modes: tuple[Mode, ...] = ("surplus",),
    *,
    fail_safe: FailSafe = "pause",
    min_dwell: float = 60.0,
    margin_w: float = 2.0,
    net_of_miner: bool = False,
    carbon: ThresholdPolicy | None = None,
    price: ThresholdPolicy | None = None,
    devices: tuple[DevicePower, ...] = (GAMMA, ULTRA),
    specs: list[SignalSpec] | None = None,
    measured: bool = False,
) -> tuple[Governor, SignalBoard]:
    policy = Policy(
        modes=modes,
        fail_safe=fail_safe,
        min_dwell=min_dwell,
        surplus=SurplusPolicy(margin_w=margin_w, net_of_miner=net_of_miner),
        carbon=carbon,
        price=price,
    )
    chosen = [s for s in SPECS if s.name != "grid_import"] if specs is None else specs
    signals = {"gamma": "power.gamma"} if measured else None
    return Governor(policy, devices, signals), SignalBoard(chosen)


def put(board: SignalBoard, name: str, value: float | str, at: float) -> None:
    board.update(name, str(value).encode(), at)


def state(decision: Decision) -> dict[str, tuple[bool, float | None]]:
    return {n: (d.run, d.frequency_mhz) for n, d in decision.per_device.items()}


def test_always_runs_everything_at_the_configured_frequency() -> None:
    governor, board = make(("always",))
    first = governor.step(0.0, board)
    assert state(first) == {"gamma": (True, 525.0), "ultra": (True, 485.0)}
    assert set(first.changed) == {"gamma", "ultra"}
    assert not first.fail_safe_engaged
    second = governor.step(1.0, board)
    assert second.changed == ()
    assert second.changes == {}


def test_first_step_reports_every_device_even_when_paused() -> None:
    governor, board = make()
    put(board, "surplus", 0, 0.0)
    first = governor.step(0.0, board)
    assert set(first.changed) == {"gamma", "ultra"}
    assert state(first) == {"gamma": (False, None), "ultra": (False, None)}


def test_surplus_is_shared_most_efficient_first() -> None:
    governor, board = make()
    assert governor.device_names == ("gamma", "ultra")
    put(board, "surplus", 30.0, 0.0)
    decision = governor.step(0.0, board)
    gamma, ultra = decision.per_device["gamma"], decision.per_device["ultra"]
    assert (gamma.run, gamma.frequency_mhz) == (True, 525.0)
    assert ultra.run
    assert ultra.frequency_mhz == ULTRA.max_frequency_for(30.0 - GAMMA.watts(525.0) - 2.0)
    assert gamma.power_w + ultra.power_w <= 30.0
    assert "surplus" in ultra.reason


def test_surplus_drop_scales_down_at_once_and_pauses_below_minimum() -> None:
    governor, board = make(devices=(GAMMA,))
    put(board, "surplus", 30.0, 0.0)
    assert state(governor.step(0.0, board))["gamma"] == (True, 525.0)
    put(board, "surplus", 12.0, 1.0)
    slower = governor.step(1.0, board)
    assert slower.changed == ("gamma",)
    assert slower.per_device["gamma"].frequency_mhz == GAMMA.max_frequency_for(12.0)
    assert slower.per_device["gamma"].power_w <= 12.0
    put(board, "surplus", 3.0, 2.0)
    paused = governor.step(2.0, board).per_device["gamma"]
    assert not paused.run
    assert paused.reason.startswith("paused: surplus 3.0 W <")


def test_resume_needs_the_margin_and_the_dwell() -> None:
    governor, board = make(devices=(GAMMA,), min_dwell=60.0, margin_w=2.0)
    floor = GAMMA.watts(262.5)
    put(board, "surplus", 30.0, 0.0)
    governor.step(0.0, board)
    put(board, "surplus", 0.0, 10.0)
    assert not governor.step(10.0, board).per_device["gamma"].run
    put(board, "surplus", 30.0, 20.0)
    held = governor.step(20.0, board).per_device["gamma"]
    assert not held.run
    assert "dwell, may resume in 50 s" in held.reason
    put(board, "surplus", floor + 1.0, 70.0)
    assert not governor.step(70.0, board).per_device["gamma"].run, "within the margin"
    put(board, "surplus", floor + 2.0, 71.0)
    resumed = governor.step(71.0, board)
    assert resumed.per_device["gamma"].run
    assert resumed.per_device["gamma"].frequency_mhz == 262.5


def test_raising_needs_the_margin_and_a_new_reading() -> None:
    governor, board = make(devices=(GAMMA,), margin_w=2.0)
    put(board, "surplus", 12.0, 0.0)
    start = governor.step(0.0, board).per_device["gamma"].frequency_mhz
    assert start == GAMMA.max_frequency_for(10.0)
    put(board, "surplus", 13.0, 1.0)
    up = governor.step(1.0, board).per_device["gamma"].frequency_mhz
    assert up == GAMMA.max_frequency_for(11.0)
    assert up is not None
    assert governor.step(2.0, board).changed == (), "no reading since the change"
    put(board, "surplus", GAMMA.watts(up) + 1.0, 3.0)
    assert governor.step(3.0, board).changed == (), "inside the hysteresis band"


def test_net_of_miner_adds_the_miners_draw_back() -> None:
    governor, board = make(devices=(GAMMA,), net_of_miner=True)
    solar = 14.0
    draw = 0.0
    frequencies = []
    for t in range(0, 60, 5):
        put(board, "surplus", solar - draw, float(t))
        decision = governor.step(float(t), board)
        draw = decision.per_device["gamma"].power_w
        frequencies.append(decision.per_device["gamma"].frequency_mhz)
    assert frequencies[-1] == GAMMA.max_frequency_for(solar - 2.0)
    assert len(set(frequencies[2:])) == 1, f"settles, no oscillation: {frequencies}"
    assert draw <= solar


def test_export_and_import_signals_combine() -> None:
    specs = [s for s in SPECS if s.name in ("surplus", "grid_import")]
    governor, board = make(devices=(GAMMA,), specs=specs)
    put(board, "surplus", 40.0, 0.0)
    put(board, "grid_import", 35.0, 0.0)
    decision = governor.step(0.0, board)
    assert decision.surplus_w == 5.0
    assert not decision.per_device["gamma"].run


def test_carbon_mode_with_hysteresis() -> None:
    governor, board = make(("carbon",), carbon=ThresholdPolicy(250.0, 25.0), min_dwell=0.0)
    trace = []
    for t, intensity in enumerate([240, 220, 240, 250, 260, 240, 226, 225]):
        put(board, "carbon_intensity", intensity, float(t))
        decision = governor.step(float(t), board)
        trace.append(decision.per_device["gamma"].run)
        assert decision.carbon_intensity == intensity
    assert trace == [False, True, True, True, False, False, False, True]
    put(board, "carbon_intensity", 251, 10.0)
    reason = governor.step(10.0, board).per_device["ultra"].reason
    assert reason == "paused: carbon intensity 251 g/kWh > 250"


def test_price_mode_with_hysteresis() -> None:
    governor, board = make(("price",), price=ThresholdPolicy(0.10, 0.02), min_dwell=0.0)
    runs = []
    for t, price in enumerate([0.09, 0.08, 0.10, 0.11, 0.09, 0.08]):
        put(board, "price", price, float(t))
        runs.append(governor.step(float(t), board).per_device["gamma"].run)
    assert runs == [False, True, True, False, False, True]


def test_combination_needs_every_condition() -> None:
    governor, board = make(
        ("surplus", "carbon", "price"),
        carbon=ThresholdPolicy(300.0, 0.0),
        price=ThresholdPolicy(0.2, 0.0),
        min_dwell=0.0,
    )
    put(board, "surplus", 50.0, 0.0)
    put(board, "carbon_intensity", 400, 0.0)
    put(board, "price", 0.1, 0.0)
    assert not any(d.run for d in governor.step(0.0, board).per_device.values())
    put(board, "carbon_intensity", 200, 1.0)
    assert all(d.run for d in governor.step(1.0, board).per_device.values())
    put(board, "price", 0.3, 2.0)
    decision = governor.step(2.0, board)
    assert not any(d.run for d in decision.per_device.values())
    assert "price 0.3 /kWh > 0.2" in decision.per_device["gamma"].reason
    assert decision.mode == "surplus+carbon+price"


def test_stale_signal_engages_the_fail_safe_and_says_why() -> None:
    governor, board = make(devices=(GAMMA,))
    put(board, "surplus", 30.0, 0.0)
    assert governor.step(0.0, board).per_device["gamma"].run
    decision = governor.step(31.0, board)
    assert decision.fail_safe_engaged
    assert not decision.per_device["gamma"].run
    assert decision.fail_safe_reason is not None
    assert "fail-safe pause" in decision.fail_safe_reason
    assert "surplus stale: last value 31 s ago (limit 30 s)" in decision.fail_safe_reason
    assert decision.per_device["gamma"].reason.startswith("fail-safe pause: signal surplus stale")


def test_garbage_payload_engages_the_fail_safe_and_says_why() -> None:
    governor, board = make(("carbon",), carbon=ThresholdPolicy(300.0))
    put(board, "carbon_intensity", 100, 0.0)
    assert governor.step(0.0, board).per_device["gamma"].run
    put(board, "carbon_intensity", "unavailable", 1.0)
    decision = governor.step(1.0, board)
    assert decision.fail_safe_engaged
    assert not decision.per_device["gamma"].run
    assert decision.fail_safe_reason is not None
    assert "topic 'home/carbon'" in decision.fail_safe_reason
    assert "sensor state is 'unavailable'" in decision.fail_safe_reason


def test_missing_signal_at_start_pauses() -> None:
    governor, board = make()
    decision = governor.step(0.0, board)
    assert decision.fail_safe_engaged
    assert "no value yet on topic 'home/surplus'" in (decision.fail_safe_reason or "")
    assert not any(d.run for d in decision.per_device.values())


def test_fail_safe_run_treats_unknown_as_allowed() -> None:
    governor, board = make(fail_safe="run")
    decision = governor.step(0.0, board)
    assert decision.fail_safe_engaged
    assert state(decision) == {"gamma": (True, 525.0), "ultra": (True, 485.0)}
    assert decision.per_device["gamma"].reason.startswith("fail-safe run: signal surplus: no value")


def test_fail_safe_run_never_overrides_a_known_refusal() -> None:
    governor, board = make(("surplus", "carbon"), fail_safe="run", carbon=ThresholdPolicy(100.0))
    put(board, "carbon_intensity", 500, 0.0)
    decision = governor.step(0.0, board)
    assert decision.fail_safe_engaged, "surplus is unknown"
    assert not any(d.run for d in decision.per_device.values()), "carbon is known too high"


def test_fail_safe_hold_last_keeps_the_state() -> None:
    governor, board = make(devices=(GAMMA,), fail_safe="hold-last")
    assert not governor.step(0.0, board).per_device["gamma"].run, "no history: pause"
    put(board, "surplus", 12.0, 1.0)
    before = governor.step(1.0, board).per_device["gamma"]
    held = governor.step(40.0, board)
    assert held.fail_safe_engaged
    assert (held.per_device["gamma"].run, held.per_device["gamma"].frequency_mhz) == (
        before.run,
        before.frequency_mhz,
    )
    assert held.changed == ()


def test_fail_safe_hold_last_uses_the_last_threshold_verdict() -> None:
    governor, board = make(("carbon",), fail_safe="hold-last", carbon=ThresholdPolicy(300.0))
    put(board, "carbon_intensity", 100, 0.0)
    governor.step(0.0, board)
    assert governor.step(2000.0, board).per_device["gamma"].run
    put(board, "carbon_intensity", 400, 2001.0)
    governor.step(2001.0, board)
    assert not governor.step(5000.0, board).per_device["gamma"].run


def test_reacts_to_a_signal_change_within_two_seconds() -> None:
    governor, board = make(("carbon",), carbon=ThresholdPolicy(300.0), min_dwell=0.0)
    put(board, "carbon_intensity", 100, 0.0)
    now = 0.0
    assert governor.step(now, board).per_device["gamma"].run
    put(board, "carbon_intensity", 900, 0.3)
    reacted_at = None
    while reacted_at is None:
        now += governor.policy.control_interval
        if not governor.step(now, board).per_device["gamma"].run:
            reacted_at = now
    assert reacted_at - 0.3 <= 2.0


def test_measured_power_is_reported_and_corrects_the_model() -> None:
    governor, board = make(devices=(GAMMA,), measured=True, margin_w=0.0)
    put(board, "surplus", 40.0, 0.0)
    first = governor.step(0.0, board).per_device["gamma"]
    assert (first.measured, first.power_w) == (False, GAMMA.watts(525.0))
    put(board, "power.gamma", 20.5, 1.0)
    measured = governor.step(1.0, board).per_device["gamma"]
    assert (measured.measured, measured.power_w) == (True, 20.5)
    put(board, "surplus", 16.0, 2.0)
    corrected = governor.step(2.0, board).per_device["gamma"]
    offset = 20.5 - GAMMA.watts(525.0)
    assert corrected.frequency_mhz == GAMMA.max_frequency_for(16.0, offset_w=offset)


def test_always_cannot_be_combined() -> None:
    with pytest.raises(ValueError, match="always"):
        make(("always", "carbon"))
