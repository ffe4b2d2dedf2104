"""Governor properties under arbitrary signal sequences (Hypothesis).

Whatever the signals do (jumps, garbage, silence long enough to go stale), the governor
must never restart a device sooner than the dwell allows, never run while a condition it
can evaluate says no, and report exactly the devices whose state changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_client.energy.governor import (
    FAIL_SAFES,
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

DEVICES = (
    DevicePower("gamma", CHIP_POWER["BM1370"], 1, 262.5, 525.0),
    DevicePower("ultra", CHIP_POWER["BM1366"], 1, 243.75, 485.0),
    DevicePower("supra", CHIP_POWER["BM1368"], 2, 300.0, 490.0, idle_watts=1.0),
)
SIGNALS = [
    SignalSpec("surplus", "s", max_age=30.0),
    SignalSpec("carbon_intensity", "c", max_age=60.0),
    SignalSpec("price", "p", max_age=60.0),
]
CARBON = ThresholdPolicy(250.0, 20.0)
PRICE = ThresholdPolicy(0.20, 0.02)

payloads = {
    "surplus": st.floats(-200, 120).map(lambda v: f"{v:.2f}".encode()),
    "carbon_intensity": st.floats(50, 500).map(lambda v: f"{v:.0f}".encode()),
    "price": st.floats(0, 0.5).map(lambda v: f"{v:.3f}".encode()),
}
garbage = st.sampled_from([b"", b"unavailable", b"{", b"nan", b'{"x": 1}', b"\xff"])
events = st.lists(
    st.tuples(
        st.floats(0, 90),
        st.sampled_from(["surplus", "carbon_intensity", "price", "none"]).flatmap(
            lambda name: st.tuples(st.just(name), payloads.get(name, st.just(b"")) | garbage)
        ),
    ),
    max_size=80,
)


@dataclass
class Policies:
    modes: tuple[Mode, ...]
    fail_safe: FailSafe
    min_dwell: float
    margin_w: float
    reserve_w: float
    net_of_miner: bool


policies = st.builds(
    Policies,
    modes=st.sets(st.sampled_from(["surplus", "carbon", "price"]), min_size=1).map(
        lambda s: tuple(sorted(s))
    ),
    fail_safe=st.sampled_from(FAIL_SAFES),
    min_dwell=st.sampled_from([0.0, 5.0, 60.0, 300.0]),
    margin_w=st.floats(0, 10),
    reserve_w=st.floats(0, 10),
    net_of_miner=st.booleans(),
)


def build(p: Policies) -> tuple[Governor, SignalBoard]:
    policy = Policy(
        modes=p.modes,
        fail_safe=p.fail_safe,
        min_dwell=p.min_dwell,
        surplus=SurplusPolicy(p.margin_w, p.reserve_w, p.net_of_miner),
        carbon=CARBON,
        price=PRICE,
    )
    return Governor(policy, DEVICES), SignalBoard(SIGNALS)


def _check_conditions(p: Policies, decision: Decision, board: SignalBoard, now: float) -> None:
    running = [d for d in decision.per_device.values() if d.run]
    if not running:
        return
    for mode, name, limit in (("carbon", "carbon_intensity", CARBON), ("price", "price", PRICE)):
        value = board.value(name, now)
        if mode in p.modes and value is not None:
            assert value <= limit.threshold, f"running with {name} {value} > {limit.threshold}"
    if "surplus" in p.modes and decision.surplus_w is not None:
        drawn = sum(d.power_w for d in decision.per_device.values())  # idle draw included
        assert drawn <= decision.surplus_w - p.reserve_w + 1e-6, (drawn, decision.surplus_w)


@settings(max_examples=300, deadline=None)
@given(policies, events)
def test_dwell_is_never_violated_and_known_refusals_always_pause(
    p: Policies, sequence: list[tuple[float, tuple[str, bytes]]]
) -> None:
    governor, board = build(p)
    now = 0.0
    started = {d.name: -float("inf") for d in DEVICES}
    stopped = {d.name: -float("inf") for d in DEVICES}
    previous: dict[str, tuple[bool, float | None]] = {d.name: (False, None) for d in DEVICES}
    first = True
    for gap, (name, payload) in sequence:
        now += gap
        if name != "none":
            board.update(name, payload, now)
        decision = governor.step(now, board)
        _check_conditions(p, decision, board, now)
        for device, verdict in decision.per_device.items():
            was_running = previous[device][0]
            if verdict.run and not was_running:
                assert now - stopped[device] >= p.min_dwell
                assert now - started[device] >= p.min_dwell
                started[device] = now
            elif was_running and not verdict.run:
                stopped[device] = now
        current = {n: (d.run, d.frequency_mhz) for n, d in decision.per_device.items()}
        moved = {n for n in current if current[n] != previous[n]}
        expected = set(current) if first else moved  # the first step reports every device
        assert set(decision.changed) == expected
        previous, first = current, False


@settings(max_examples=200, deadline=None)
@given(policies, events)
def test_fail_safe_pause_never_runs_on_unknown_signals(
    p: Policies, sequence: list[tuple[float, tuple[str, bytes]]]
) -> None:
    governor, board = build(Policies(**{**p.__dict__, "fail_safe": "pause"}))
    now = 0.0
    for gap, (name, payload) in sequence:
        now += gap
        if name != "none":
            board.update(name, payload, now)
        decision = governor.step(now, board)
        if decision.fail_safe_engaged:
            assert not any(d.run for d in decision.per_device.values())
            assert decision.fail_safe_reason
        needed = {"surplus": "surplus", "carbon": "carbon_intensity", "price": "price"}
        if any(board.value(needed[m], now) is None for m in p.modes):
            assert decision.fail_safe_engaged
