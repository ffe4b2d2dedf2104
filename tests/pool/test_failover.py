"""Failover policy: fake clock, seeded randomness, exact choices and bounded delays."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from stratum_client.config import PoolPolicy
from stratum_client.pool.failover import (
    MAX_RETURN_FACTOR,
    STABLE_SESSION,
    Attempt,
    Ending,
    FailoverPolicy,
)
from stratum_client.pool.redirect import (
    MAX_RECONNECT_WAIT,
    Redirect,
    accept_reconnect,
    reconnect_delay,
    reconnect_target,
    registrable_domain,
)

POLICY = PoolPolicy(
    backoff_initial=1.0,
    backoff_max=60.0,
    return_to_primary_after=120.0,
    primary_probe_interval=60.0,
)


def make(pools: int = 2, seed: int = 7, policy: PoolPolicy = POLICY) -> FailoverPolicy:
    return FailoverPolicy(pools, policy, random.Random(seed))


def fail_current(fo: FailoverPolicy, now: float, ending: Ending = Ending.FAILED) -> Attempt:
    current = fo.current
    assert current is not None
    fo.session_ended(current, now, ending)
    attempt = fo.next_attempt(now)
    assert attempt is not None
    return attempt


def on_backup(now: float = 0.0) -> FailoverPolicy:
    """Primary failed twice: the policy now uses pool 1 and probes pool 0."""
    fo = make()
    fail_current(fo, now)
    fail_current(fo, now)
    assert fo.current == 1
    return fo


# -- ordered failover and backoff ---------------------------------------------------------


def test_starts_on_the_primary_without_waiting() -> None:
    assert make().next_attempt(0.0) == Attempt(0, 0.0)


def test_first_failure_retries_the_same_pool_after_a_jittered_backoff() -> None:
    attempt = fail_current(make(), 100.0)
    assert attempt.pool == 0
    assert 1.0 <= attempt.delay <= 3.0


def test_second_consecutive_failure_moves_to_the_next_pool_at_once() -> None:
    fo = make()
    fail_current(fo, 0.0)
    attempt = fail_current(fo, 2.0)
    assert attempt == Attempt(1, 0.0)


def test_wraps_around_and_time_spent_elsewhere_counts_as_waiting() -> None:
    fo = on_backup(0.0)
    fail_current(fo, 10.0)
    attempt = fail_current(fo, 20.0)
    assert attempt.pool == 0
    assert attempt.delay == 0.0  # the primary's backoff ran out while we were on pool 1


def test_a_single_pool_keeps_being_retried() -> None:
    fo = make(pools=1)
    for step in range(10):
        attempt = fail_current(fo, float(step * 100))
        assert attempt.pool == 0
        assert attempt.delay > 0


def test_backoff_stays_within_bounds_and_reaches_the_cap() -> None:
    fo = make(pools=1, seed=3)
    delays = []
    now = 0.0
    for _ in range(60):
        attempt = fail_current(fo, now)
        delays.append(attempt.delay)
        now += attempt.delay
    assert all(POLICY.backoff_initial <= d <= POLICY.backoff_max for d in delays)
    assert max(delays) == pytest.approx(POLICY.backoff_max)
    assert delays[0] <= 3.0


def test_same_seed_same_delays() -> None:
    def run(seed: int) -> list[float]:
        fo = make(pools=1, seed=seed)
        return [fail_current(fo, i * 1000.0).delay for i in range(8)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_healthy_session_resets_backoff_and_failures() -> None:
    fo = make(pools=1)
    now = 0.0
    for _ in range(6):
        now += fail_current(fo, now).delay
    fo.session_up(0, now)
    now += STABLE_SESSION + 1
    attempt = fail_current(fo, now, Ending.LOST)
    assert attempt.pool == 0
    assert 0.0 <= attempt.delay <= POLICY.backoff_initial  # quick, jittered reconnect
    assert fo.failures(0) == 0
    assert fail_current(fo, now + 1).delay <= 3.0  # the backoff starts over


def test_session_that_dies_quickly_counts_as_a_failure() -> None:
    fo = make()
    fo.session_up(0, 0.0)
    fail_current(fo, 5.0, Ending.LOST)
    fo.session_up(0, 10.0)
    attempt = fail_current(fo, 15.0, Ending.LOST)
    assert attempt.pool == 1


def test_silence_is_a_failure_even_after_a_long_session() -> None:
    fo = make()
    fo.session_up(0, 0.0)
    assert fail_current(fo, 3600.0, Ending.SILENT).pool == 0
    assert fo.failures(0) == 1
    assert fail_current(fo, 3700.0, Ending.SILENT).pool == 1


def test_refused_credentials_move_on_at_once() -> None:
    fo = make(pools=3)
    assert fail_current(fo, 0.0, Ending.REFUSED) == Attempt(1, 0.0)


def test_leaving_on_purpose_is_not_a_failure() -> None:
    fo = make()
    fo.session_up(0, 0.0)
    fo.session_ended(0, 1.0, Ending.LEFT)
    assert fo.failures(0) == 0
    assert fo.next_attempt(1.0) == Attempt(0, 0.0)


def test_honoured_reconnect_waits_as_asked() -> None:
    fo = make()
    fo.session_up(0, 0.0)
    fo.session_ended(0, STABLE_SESSION + 5, Ending.RECONNECT, wait=42.0)
    assert fo.next_attempt(STABLE_SESSION + 5) == Attempt(0, 42.0)
    assert fo.failures(0) == 0


def test_redirect_loop_backs_off_and_moves_on() -> None:
    fo = make()
    fo.session_up(0, 0.0)
    fo.session_ended(0, 1.0, Ending.RECONNECT, wait=0.0)
    first = fo.next_attempt(1.0)
    assert first is not None
    assert first.pool == 0
    assert first.delay >= 1.0
    fo.session_up(0, 5.0)
    fo.session_ended(0, 6.0, Ending.RECONNECT, wait=0.0)
    attempt = fo.next_attempt(6.0)
    assert attempt is not None
    assert attempt.pool == 1


# -- probing and returning to the primary ----------------------------------------------


def test_no_probes_while_on_the_primary() -> None:
    fo = make()
    assert fo.next_probe_in(0.0) is None
    assert fo.probes_due(1e6) == []


def test_probes_run_every_interval_while_on_a_backup() -> None:
    fo = on_backup(0.0)
    assert fo.next_probe_in(0.0) == POLICY.primary_probe_interval
    assert fo.probes_due(59.0) == []
    assert fo.probes_due(60.0) == [0]
    assert fo.probes_due(120.0) == []  # still busy with the first probe: skip a round
    fo.probe_finished(0, False, 130.0)
    assert fo.probes_due(179.0) == []
    assert fo.probes_due(180.0) == [0]


def test_returns_only_after_a_long_enough_healthy_streak() -> None:
    fo = on_backup(0.0)
    results = []
    for t in (60.0, 120.0, 180.0):
        assert fo.probes_due(t) == [0]
        results.append(fo.probe_finished(0, True, t))
    assert results == [None, None, 0]  # streak 0 s, 60 s, then 120 s: back to the primary
    assert fo.current == 0
    assert fo.next_attempt(180.0) == Attempt(0, 0.0)
    assert fo.next_probe_in(180.0) is None


def test_return_after_zero_means_the_first_good_probe() -> None:
    policy = PoolPolicy(return_to_primary_after=0.0, primary_probe_interval=10.0)
    fo = make(policy=policy)
    fail_current(fo, 0.0)
    fail_current(fo, 0.0)
    assert fo.probes_due(10.0) == [0]
    assert fo.probe_finished(0, True, 10.0) == 0


def test_a_failed_probe_resets_the_streak() -> None:
    fo = on_backup(0.0)
    for t, ok in ((60.0, True), (120.0, True), (180.0, False), (240.0, True), (300.0, True)):
        assert fo.probes_due(t) == [0]
        assert fo.probe_finished(0, ok, t) is None
    assert fo.probes_due(360.0) == [0]
    assert fo.probe_finished(0, True, 360.0) == 0


def simulate(
    fo: FailoverPolicy,
    primary_up: Callable[[float], bool],
    start: float,
    end: float,
    *,
    primary_life: float | None = None,
) -> int:
    """Drive the policy like the manager would, second by second, against a backup that
    always works and a primary that is up when ``primary_up(t)`` (and whose sessions
    die after ``primary_life`` s, if given); count the returns to the primary."""
    connected: int | None = None
    up_since = 0.0
    returns = 0
    for second in range(int(start), int(end)):
        now = float(second)
        dies = primary_life is not None and now - up_since >= primary_life
        if connected == 0 and (dies or not primary_up(now)):
            fo.session_ended(0, now, Ending.LOST)
            connected = None
        attempt = fo.next_attempt(now)
        if connected is None and attempt is not None and attempt.delay == 0:
            if attempt.pool == 1 or primary_up(now):
                fo.session_up(attempt.pool, now)
                connected, up_since = attempt.pool, now
            else:
                fo.session_ended(attempt.pool, now, Ending.FAILED)
        for index in fo.probes_due(now):
            if fo.probe_finished(index, primary_up(now), now) is not None:
                returns += 1
                if connected is not None:
                    fo.session_ended(connected, now, Ending.LEFT)
                    connected = None
    return returns


@pytest.mark.parametrize("period", [45.0, 60.0, 90.0, 119.0])
def test_no_return_while_the_primary_keeps_blinking(period: float) -> None:
    """Up for less than return_to_primary_after at a time: never returned to."""
    fo = on_backup(0.0)
    assert simulate(fo, lambda t: int(t // period) % 2 == 0, 0, 24 * 3600) == 0
    assert fo.current == 1


def test_steady_primary_is_returned_to_exactly_once() -> None:
    fo = on_backup(0.0)
    assert simulate(fo, lambda t: t >= 1000, 0, 24 * 3600) == 1
    assert fo.current == 0


def test_returns_are_rate_limited_when_probes_are_fooled() -> None:
    """Every probe of the primary succeeds but every session on it dies within seconds
    (say it accepts connections and then drops authorized miners): each return that
    fails fast doubles the streak the next one needs."""
    fo = on_backup(0.0)
    day = 24 * 3600
    returns = simulate(fo, lambda t: True, 0, day, primary_life=5.0)
    cap = POLICY.return_to_primary_after * MAX_RETURN_FACTOR
    assert fo.required_streak(0) == cap
    assert 5 <= returns <= 5 + day / cap  # without the doubling: about one every 3 min


def test_a_long_stay_after_returning_restores_trust() -> None:
    fo = on_backup(0.0)
    assert simulate(fo, lambda t: True, 0, 3600, primary_life=5.0) >= 2
    assert fo.required_streak(0) > POLICY.return_to_primary_after
    simulate(fo, lambda t: True, 3600, 4 * 3600)
    assert fo.current == 0
    fo.session_ended(0, 4 * 3600.0, Ending.LOST)  # hours later it drops: a healthy session
    assert fo.required_streak(0) == POLICY.return_to_primary_after


def test_backup_failures_do_not_cut_the_probe_schedule() -> None:
    fo = make(pools=3)
    fail_current(fo, 0.0)
    fail_current(fo, 0.0)
    fail_current(fo, 1.0)
    fail_current(fo, 2.0)
    assert fo.current == 2
    assert fo.probes_due(100.0) == [0, 1]


def test_returns_to_the_best_pool_with_a_long_enough_streak() -> None:
    fo = make(pools=3, policy=PoolPolicy(return_to_primary_after=60, primary_probe_interval=30))
    for _ in range(4):
        fail_current(fo, 0.0)
    assert fo.current == 2
    for t in (30.0, 60.0):
        assert fo.probes_due(t) == [0, 1]
        assert fo.probe_finished(0, False, t) is None
        assert fo.probe_finished(1, True, t) is None
    assert fo.probes_due(90.0) == [0, 1]
    assert fo.probe_finished(0, False, 90.0) is None
    assert fo.probe_finished(1, True, 90.0) == 1
    assert fo.current == 1
    assert fo.probes_due(120.0) == [0]  # and the primary is still watched


def test_streaks_do_not_survive_a_move() -> None:
    fo = on_backup(0.0)
    assert fo.probes_due(60.0) == [0]
    assert fo.probe_finished(0, True, 60.0) is None
    fo.switch_to(0, 70.0, pinned=False)
    fail_current(fo, 80.0)
    fail_current(fo, 80.0)
    assert fo.current == 1
    assert fo.probes_due(140.0) == [0]
    assert fo.probe_finished(0, True, 200.0) is None  # a new streak, not one from t=60


# -- choices made by people -------------------------------------------------------------


def test_manual_switch_to_a_backup_is_kept() -> None:
    fo = make()
    fo.switch_to(1, 0.0)
    assert fo.pinned
    assert fo.next_attempt(0.0) == Attempt(1, 0.0)
    assert fo.next_probe_in(0.0) is None
    assert fo.probes_due(1e6) == []


def test_a_pinned_pool_that_fails_over_by_itself_unpins() -> None:
    fo = make(pools=3)
    fo.switch_to(1, 0.0)
    fail_current(fo, 1.0)
    assert fail_current(fo, 2.0).pool == 2
    assert not fo.pinned
    assert fo.probes_due(100.0) == [0, 1]


def test_manual_switch_to_the_primary_is_not_pinned() -> None:
    fo = on_backup()
    fo.switch_to(0, 5.0)
    assert not fo.pinned
    assert fo.next_attempt(5.0) == Attempt(0, 0.0)


def test_disabling_the_current_pool_moves_to_the_next() -> None:
    fo = make(pools=3)
    fo.set_enabled(0, False, 0.0)
    assert fo.next_attempt(0.0) == Attempt(1, 0.0)
    assert fo.probes_due(1e6) == []  # the disabled primary is not probed
    fo.set_enabled(0, True, 10.0)
    assert fo.probes_due(70.0) == [0]


def test_all_disabled_means_nothing_to_do_until_one_is_enabled() -> None:
    fo = make()
    fo.set_enabled(0, False, 0.0)
    fo.set_enabled(1, False, 0.0)
    assert fo.current is None
    assert fo.next_attempt(0.0) is None
    fo.set_enabled(1, True, 1.0)
    assert fo.next_attempt(1.0) == Attempt(1, 0.0)


def test_failover_skips_disabled_pools() -> None:
    fo = make(pools=3)
    fo.set_enabled(1, False, 0.0)
    fail_current(fo, 0.0)
    assert fail_current(fo, 1.0).pool == 2


def test_added_pool_is_last_in_line() -> None:
    fo = make(pools=1)
    assert fo.add_pool() == 1
    fail_current(fo, 0.0)
    assert fail_current(fo, 1.0).pool == 1


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one pool"):
        make(pools=0)
    with pytest.raises(ValueError, match="failures_before_switch"):
        FailoverPolicy(1, POLICY, random.Random(), failures_before_switch=0)


# -- client.reconnect -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "requested", "expected"),
    [
        ("pool.example.com", "eu.pool.example.com", True),
        ("eu.pool.example.com", "us.pool.example.com", True),
        ("pool.example.com", "POOL.Example.COM.", True),
        ("pool.example.com", "example.com", True),
        ("pool.example.com", "pool.example.org", False),
        ("pool.example.com", "evil.com", False),
        ("pool.example.com", "example.com.evil.net", False),
        ("pool.example.co.uk", "eu.pool.example.co.uk", True),
        ("pool.example.co.uk", "evil.co.uk", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.1", "localhost", False),
        ("localhost", "127.0.0.1", False),
        ("localhost", "LOCALHOST", True),
        ("localhost", "localhost.", True),
        ("::1", "[::1]", True),
        ("pool.example.com", None, True),
        ("pool.example.com", "", True),
        ("pool.example.com", "  ", True),
    ],
)
def test_accept_reconnect_same_domain(
    configured: str, requested: str | None, expected: bool
) -> None:
    assert accept_reconnect(configured, requested) is expected


def test_accept_reconnect_anywhere_when_allowed() -> None:
    assert accept_reconnect("pool.example.com", "evil.com", same_domain_only=False)


def test_registrable_domain() -> None:
    assert registrable_domain("a.b.pool.example.com") == "example.com"
    assert registrable_domain("stratum.pool.co.jp") == "pool.co.jp"
    assert registrable_domain("localhost") == "localhost"
    assert registrable_domain("2001:DB8::1") == "2001:db8::1"


@pytest.mark.parametrize(
    ("wait", "seconds"),
    [
        (None, 0.0),
        ("", 0.0),
        (0, 0.0),
        (5, 5.0),
        ("7.5", 7.5),
        (-3, 0.0),
        (10**9, MAX_RECONNECT_WAIT),
        (float("inf"), MAX_RECONNECT_WAIT),
        (float("nan"), 0.0),
        ("soon", 0.0),
    ],
)
def test_reconnect_wait_is_capped(wait: float | int | str | None, seconds: float) -> None:
    assert reconnect_delay(wait) == seconds


def test_reconnect_target_keeps_missing_parts_and_takes_string_ports() -> None:
    current = ("eu.pool.example.com", 3333)
    base = "pool.example.com"
    assert reconnect_target(current, base, (None, None, None)) == Redirect(*current, 0.0)
    assert reconnect_target(current, base, ("us.pool.example.com", "4444", "10")) == Redirect(
        "us.pool.example.com", 4444, 10.0
    )
    assert reconnect_target(current, base, ("", 5555, 3)) == Redirect(
        "eu.pool.example.com", 5555, 3.0
    )
    assert reconnect_target(current, base, ("evil.net", 3333, 0)) is None
    assert reconnect_target(current, base, (None, "http", 0)) is None
    assert reconnect_target(current, base, (None, 70000, 0)) is None
    assert reconnect_target(current, base, ("evil.net", 1, 0), same_domain_only=False) == Redirect(
        "evil.net", 1, 0.0
    )
