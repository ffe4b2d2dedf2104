"""The alert policy: each kind fires once per condition, and again only after it ended."""

from __future__ import annotations

from dataclasses import replace

from stratum_client.alerts.config import AlertsConfig
from stratum_client.alerts.policy import (
    AlertPolicy,
    ChainView,
    Observation,
    PoolView,
    SafeStateCleared,
    SafeStateEntered,
)

CONFIG = AlertsConfig(
    enabled=True,
    pool_down_after=30.0,
    chain_dead_after=60.0,
    rejected_percent=10.0,
    rejected_window=300.0,
    rejected_min_shares=10,
)
UP = (PoolView("main", down=False),)


def seen(**changes: object) -> Observation:
    base = Observation(blocks_found=0, accepted=0, rejected=0, pools=UP)
    return replace(base, **changes)  # type: ignore[arg-type]


def kinds(policy: AlertPolicy, observation: Observation, now: float) -> list[str]:
    return [alert.kind for alert in policy.observe(observation, now)]


def test_a_healthy_miner_raises_nothing() -> None:
    policy = AlertPolicy(CONFIG)
    for second in range(0, 600, 5):
        chains = (ChainView("a", nonces=second, paused=False),)
        assert kinds(policy, seen(accepted=second, chains=chains), float(second)) == []


def test_each_block_candidate_alerts_once() -> None:
    policy = AlertPolicy(CONFIG)
    assert kinds(policy, seen(), 0.0) == []
    [alert] = policy.observe(seen(blocks_found=1), 1.0)
    assert (alert.kind, alert.title) == ("block_found", "block candidate found")
    assert kinds(policy, seen(blocks_found=1), 2.0) == []
    assert kinds(policy, seen(blocks_found=3), 3.0) == ["block_found"]
    assert "2 share(s)" in policy.observe(seen(blocks_found=5), 4.0)[0].message


def test_a_pool_down_alerts_once_after_the_threshold_and_rearms_when_back() -> None:
    policy = AlertPolicy(CONFIG)
    down = (PoolView("main", down=True, last_error="connection refused"),)
    assert kinds(policy, seen(pools=down), 100.0) == []
    assert kinds(policy, seen(pools=down), 129.0) == []
    [alert] = policy.observe(seen(pools=down), 130.0)
    assert alert.kind == "pool_down"
    assert dict(alert.details) == {
        "pool": "main",
        "down for": "30 s",
        "last error": "connection refused",
    }
    assert kinds(policy, seen(pools=down), 500.0) == []  # still the same outage
    assert kinds(policy, seen(pools=UP), 501.0) == []
    assert kinds(policy, seen(pools=down), 502.0) == []  # a new outage starts its clock
    assert kinds(policy, seen(pools=down), 532.0) == ["pool_down"]


def test_a_silent_chain_is_dead_once_but_a_paused_one_is_not() -> None:
    policy = AlertPolicy(CONFIG)
    assert kinds(policy, seen(chains=(ChainView("a", 10, False),)), 0.0) == []
    assert kinds(policy, seen(chains=(ChainView("a", 10, False),)), 59.0) == []
    [alert] = policy.observe(seen(chains=(ChainView("a", 10, False, "read timeout"),)), 60.0)
    assert (alert.kind, dict(alert.details)["last error"]) == ("chain_dead", "read timeout")
    assert kinds(policy, seen(chains=(ChainView("a", 10, False),)), 900.0) == []
    assert kinds(policy, seen(chains=(ChainView("a", 11, False),)), 901.0) == []  # alive again
    assert kinds(policy, seen(chains=(ChainView("a", 11, False),)), 961.0) == ["chain_dead"]
    idle = AlertPolicy(CONFIG)  # no pool work: silence is expected, the clock restarts
    for second in range(0, 600, 10):
        quiet = seen(chains=(ChainView("a", 5, False),), has_work=False)
        assert kinds(idle, quiet, float(second)) == []
    # the last idle look was at 590 s: silence counts from there
    assert kinds(idle, seen(chains=(ChainView("a", 5, False),)), 649.0) == []
    assert kinds(idle, seen(chains=(ChainView("a", 5, False),)), 650.0) == ["chain_dead"]
    held = AlertPolicy(CONFIG)
    for second in range(0, 600, 10):
        assert kinds(held, seen(chains=(ChainView("a", 5, paused=True),)), float(second)) == []


def test_a_high_reject_rate_alerts_once_until_it_falls_to_half_the_threshold() -> None:
    policy = AlertPolicy(CONFIG)
    assert kinds(policy, seen(accepted=0, rejected=0), 0.0) == []
    assert kinds(policy, seen(accepted=4, rejected=4), 10.0) == []  # 8 answered: too few
    assert kinds(policy, seen(accepted=8, rejected=4), 20.0) == ["rejected_rate"]  # 33 %
    assert kinds(policy, seen(accepted=12, rejected=8), 30.0) == []  # still high: same alert
    assert kinds(policy, seen(accepted=100, rejected=12), 31.0) == []  # 10.7 %: same alert
    assert kinds(policy, seen(accepted=120, rejected=12), 32.0) == []  # 9.1 %: not over yet
    assert kinds(policy, seen(accepted=120, rejected=16), 33.0) == []  # 11.8 %: same alert
    assert kinds(policy, seen(accepted=400, rejected=16), 40.0) == []  # 3.8 % < 10/2: over
    # the window moves on: only the last 300 s count
    assert kinds(policy, seen(accepted=410, rejected=40), 400.0) == ["rejected_rate"]


def test_safe_state_alerts_once_per_entry() -> None:
    policy = AlertPolicy(CONFIG)
    [alert] = policy.on_notice(SafeStateEntered("hashboard-0", "ASIC temperature 95 °C"))
    assert (alert.kind, alert.message) == ("safe_state", "ASIC temperature 95 °C")
    assert policy.on_notice(SafeStateEntered("hashboard-0", "still hot")) == []
    assert [a.kind for a in policy.on_notice(SafeStateEntered("hashboard-1", "fan"))] == [
        "safe_state"
    ]
    assert policy.on_notice(SafeStateCleared("hashboard-0")) == []
    assert len(policy.on_notice(SafeStateEntered("hashboard-0", "again"))) == 1
    assert policy.on_notice("an unrelated notice") == []
