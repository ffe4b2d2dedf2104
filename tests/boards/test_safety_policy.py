"""The pure safety policy and fan PID: readings and ``now`` in, actions out.

Each rule is driven with synthetic readings on a synthetic clock, at the policy's default
thresholds (ASIC 75 °C, regulator 105 °C, 3 bad readings, 5 s stall, 30 s dwell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from stratum_client.boards.base import BoardReadings, Reading, Sensor
from stratum_client.boards.pid import FanPid
from stratum_client.boards.safety import (
    BoardState,
    EnterSafeState,
    Recover,
    SafetyConfig,
    SafetyPolicy,
    SetFan,
    SetFrequency,
    StayOff,
    Transition,
)

ALL = frozenset(Sensor)


def good(at: float, asic: float = 60.0, *, vr: float = 50.0, rpm: float = 3000.0,
         duty: float = 50.0) -> BoardReadings:  # fmt: skip
    return BoardReadings(
        at=at,
        asic_temp_c=Reading.of(asic),
        vr_temp_c=Reading.of(vr),
        fan_rpm=Reading.of(rpm),
        fan_duty_pct=Reading.of(duty),
        power_w=Reading.of(18.0),
        faults=Reading.of(()),
    )


def policy(config: SafetyConfig | None = None) -> SafetyPolicy:
    return SafetyPolicy(config or SafetyConfig(), ALL, 0.0, frequency_mhz=525.0,
                        min_frequency_mhz=400.0)  # fmt: skip


def kinds(actions: Sequence[object]) -> list[type]:
    return [type(a) for a in actions]


def test_critical_asic_enters_safe_state_with_a_transition() -> None:
    p = policy()
    assert EnterSafeState not in kinds(p.step(good(1.0, 74.9), 1.0))
    actions = p.step(good(2.0, 75.0), 2.0)
    assert kinds(actions) == [Transition, EnterSafeState]
    assert p.state is BoardState.SAFE
    assert "ASIC at 75" in p.reason


def test_critical_regulator_and_fault_bit_enter_safe_state() -> None:
    p = policy()
    assert EnterSafeState in kinds(p.step(good(1.0, vr=105.0), 1.0))
    q = policy()
    faulted = replace(good(1.0), faults=Reading.of(("IOUT_OC",)))
    assert EnterSafeState in kinds(q.step(faulted, 1.0))
    assert "IOUT_OC" in q.reason


@pytest.mark.parametrize(
    "bad",
    [Reading.failed("I2C NACK"), Reading.of(126.875), Reading.of(-40.0), Reading()],
    ids=["nack", "too-hot-to-be-true", "too-cold", "missing"],
)
def test_three_bad_readings_in_a_row_fail_safe(bad: Reading[float]) -> None:
    p = policy()
    for t in (1.0, 2.0):
        assert EnterSafeState not in kinds(p.step(replace(good(t), asic_temp_c=bad), t))
    assert EnterSafeState in kinds(p.step(replace(good(3.0), asic_temp_c=bad), 3.0))


def test_a_good_reading_between_bad_ones_restarts_the_count() -> None:
    p = policy()
    bad = replace(good(0.0), vr_temp_c=Reading.failed("garbage"))
    for t, readings in enumerate([bad, bad, good(0.0), bad, bad], start=1):
        assert EnterSafeState not in kinds(p.step(replace(readings, at=t), float(t)))


def test_stall_trips_within_five_seconds_of_the_first_zero_tach() -> None:
    p = policy()
    p.step(good(0.0), 0.0)
    tripped_at = None
    for t in range(1, 10):
        if EnterSafeState in kinds(p.step(good(t, rpm=0.0, duty=60.0), float(t))):
            tripped_at = t
            break
    assert tripped_at is not None
    assert tripped_at - 1 <= 5.0  # first zero reading at t = 1
    assert "fan stalled" in p.reason


def test_warning_steps_the_frequency_down_then_back_up() -> None:
    p = policy()
    steps = [a for a in p.step(good(0.0, 71.0), 0.0) if isinstance(a, SetFrequency)]
    assert [s.mhz for s in steps] == [500.0]
    assert p.state is BoardState.THROTTLED
    assert not [a for a in p.step(good(1.0, 71.0), 1.0) if isinstance(a, SetFrequency)]
    assert [a.mhz for a in p.step(good(5.0, 71.0), 5.0) if isinstance(a, SetFrequency)] == [475.0]
    up = [a.mhz for a in p.step(good(40.0, 60.0), 40.0) if isinstance(a, SetFrequency)]
    assert up == [500.0]


def test_recovery_after_dwell_below_threshold_minus_hysteresis() -> None:
    p = policy()
    p.step(good(0.0, 80.0), 0.0)
    assert p.off
    assert Recover not in kinds(p.step(good(10.0, 66.0), 10.0))  # above 75 − 10
    assert Recover not in kinds(p.step(good(11.0, 64.0), 11.0))  # dwell starts
    assert Recover not in kinds(p.step(good(40.0, 64.0), 40.0))  # 29 s
    actions = p.step(good(41.0, 64.0), 41.0)
    recover = next(a for a in actions if isinstance(a, Recover))
    assert recover.frequency_mhz == 500.0  # one step below where it was
    assert p.state is BoardState.THROTTLED


def test_at_most_n_recoveries_an_hour_then_it_stays_off() -> None:
    p = policy(SafetyConfig(max_recoveries_per_hour=2, dwell_s=10.0))
    now, recovered = 0.0, 0
    for _ in range(3):
        p.step(good(now, 80.0), now)
        for _ in range(12):
            now += 1.0
            actions = p.step(good(now, 50.0), now)
            recovered += Recover in kinds(actions)
            if StayOff in kinds(actions):
                break
        now += 1.0
    assert recovered == 2
    assert p.state is BoardState.LOCKED_OUT
    assert "2 recoveries in the last hour" in p.reason
    assert p.step(good(now + 10, 40.0), now + 10) == []  # stays off


def test_fan_pid_raises_duty_when_hot_and_holds_the_start_duty_first() -> None:
    pid = FanPid(60.0, start=70.0)
    assert pid.update(60.0, 0.0) == pytest.approx(70.0)
    hot = pid.update(70.0, 1.0)
    assert hot > 70.0
    cold = FanPid(60.0, start=70.0)
    cold.update(50.0, 0.0)
    assert cold.update(50.0, 1.0) < 70.0


def test_fan_follows_the_pid_and_goes_full_without_a_temperature() -> None:
    p = policy()
    fan = [a for a in p.step(good(0.0, 60.0), 0.0) if isinstance(a, SetFan)]
    assert [f.percent for f in fan] == [70.0]
    no_temp = replace(good(1.0), asic_temp_c=Reading.failed("NACK"))
    assert [a.percent for a in p.step(no_temp, 1.0) if isinstance(a, SetFan)] == [100.0]


def _unplugged(at: float) -> BoardReadings:
    gone: Reading[float] = Reading.failed("control port lost")
    return BoardReadings(at=at, asic_temp_c=gone, vr_temp_c=gone, fan_rpm=gone,
                         power_w=gone, faults=Reading.failed("gone"), link_lost=True)  # fmt: skip


def test_an_unplug_recovers_after_the_short_dwell_at_the_same_frequency() -> None:
    p = policy(SafetyConfig(max_recoveries_per_hour=1))
    for t in (1.0, 2.0, 3.0):
        p.step(_unplugged(t), t)
    assert p.off
    for t in (40.0, 41.0):  # back, cool; relink_dwell_s = 2
        assert Recover not in kinds(p.step(good(t, 50.0), t))
    recover = next(a for a in p.step(good(42.0, 50.0), 42.0) if isinstance(a, Recover))
    assert recover.frequency_mhz == 525.0
    assert p.snapshot.recoveries_last_hour == 0
    for t in (43.0, 44.0, 45.0):  # a second unplug is not held against the hourly cap
        p.step(_unplugged(t), t)
    assert any(isinstance(a, Recover) for t in (80.0, 81.0, 82.0)
               for a in p.step(good(t, 50.0), t))  # fmt: skip


def test_a_hot_reading_after_an_unplug_makes_it_an_ordinary_safe_state() -> None:
    p = policy()
    for t in (1.0, 2.0, 3.0):
        p.step(_unplugged(t), t)
    p.step(good(10.0, 70.0), 10.0)  # back, but above 75 − 10
    for t in (11.0, 12.0, 13.0, 14.0):
        assert Recover not in kinds(p.step(good(t, 50.0), t))  # the full 30 s dwell now
    assert Recover in kinds(p.step(good(41.0, 50.0), 41.0))
