"""PoolSession handshakes: configure, subscribe (with resume), authorize, timeouts."""

from __future__ import annotations

import pytest
from stratum_script import (
    PASSWORD,
    SLUSH,
    TESTNET,
    UA,
    notification,
    notify,
    one,
    only,
    ready_session,
    reply,
    sent,
    settings,
    subscribe_result,
)

from stratum_client.errors import InputError, ProtocolError, WorkError
from stratum_client.protocol import (
    AuthorizationFailed,
    Authorized,
    DifficultyChanged,
    NewJob,
    PoolSession,
    ProtocolViolation,
    RequestFailed,
    RequestTimedOut,
    SendBytes,
    SessionState,
    ShareAccepted,
    Subscribed,
    SubscribeFailed,
    VersionMaskChanged,
    VersionRollingNegotiated,
    VersionRollingUnavailable,
)
from stratum_client.work.share import check_share
from stratum_client.work.versionroll import apply_version_bits

USER = "bc1qworker.rig1"


def test_happy_path_real_transcript_and_share_hashes_to_the_vector() -> None:
    session = PoolSession(settings(suggest_difficulty=512.0, extranonce_subscribe=True))
    assert session.state is SessionState.NEW
    opening = session.start(0.0)
    assert [o.method for o in only(opening, SendBytes)] == [
        "mining.configure",
        "mining.subscribe",
        "mining.authorize",
    ]
    assert sent(opening) == [
        {
            "id": 1,
            "method": "mining.configure",
            "params": [
                ["version-rolling"],
                {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2},
            ],
        },
        {"id": 2, "method": "mining.subscribe", "params": [UA]},
        {"id": 3, "method": "mining.authorize", "params": [USER, PASSWORD]},
    ]
    assert session.state is SessionState.SUBSCRIBING

    # The pool answers in order, and pushes difficulty and work before the authorize reply.
    transcript = (
        reply(1, {"version-rolling": True, "version-rolling.mask": "1fffe000"})
        + reply(2, [[["mining.set_difficulty", "6b2e"], ["mining.notify", "6b2e"]], "57a6f098", 4])
        + notification("mining.set_difficulty", 512)
        + notify(TESTNET)
        + reply(3, True)
    )
    out = session.receive_data(transcript, 0.5)
    assert out[:3] == [
        VersionRollingNegotiated(0x1FFFE000),
        Subscribed(bytes.fromhex("57a6f098"), 4, "6b2e", resumed=False),
        DifficultyChanged(512.0, 1.0, 0.5),
    ]
    job = one(out, NewJob).job
    assert (job.job_id, job.extranonce1.hex(), job.extranonce2_size) == ("1", "57a6f098", 4)
    assert (job.difficulty, job.version_mask, job.received_at) == (512.0, 0x1FFFE000, 0.5)
    assert out[4] == Authorized(USER)
    assert sent(out) == [
        {"id": 4, "method": "mining.suggest_difficulty", "params": [512]},
        {"id": 5, "method": "mining.extranonce.subscribe", "params": []},
    ]
    assert session.state is SessionState.READY
    assert session.subscription_id == "6b2e"

    share = TESTNET["submit"]
    en2 = bytes.fromhex(TESTNET["extranonce2"])
    ntime, nonce = int(share["ntime"], 16), int(share["nonce"], 16)
    bits = int(share["version_bits"], 16)
    submit = session.submit("1", en2, ntime, nonce, bits, now=1.0)
    assert submit.data == (
        b'{"id":6,"method":"mining.submit","params":["bc1qworker.rig1","1","c7080000",'
        b'"64b3f3ec","ed460d91","00002000"]}\n'
    )
    assert submit.request_id == 6

    verdict = check_share(
        job, en2, ntime, nonce, apply_version_bits(job.version, bits, job.version_mask)
    )
    assert verdict.hash_hex == TESTNET["expect"]["hash"]
    assert verdict.meets_pool_difficulty

    accepted = session.receive_data(reply(6, True) + reply(4, True) + reply(5, True), 1.25)
    assert accepted == [ShareAccepted(6, "1", 0.25)]
    assert session.outstanding == 0


def test_slush_vector_without_version_rolling_submits_five_params() -> None:
    session, out = ready_session(en1=SLUSH["extranonce1"], mask=None, difficulty=683)
    assert one(out, VersionRollingUnavailable).reason.startswith("pool refused mining.configure")
    (job,) = (e.job for e in only(session.receive_data(notify(SLUSH), 2.0), NewJob))
    assert job.version_mask == 0
    share = SLUSH["submit"]
    en2 = bytes.fromhex(SLUSH["extranonce2"])
    submit = session.submit(job, en2, int(share["ntime"], 16), int(share["nonce"], 16), now=2.0)
    assert sent([submit])[0]["params"] == [USER, "esp", "00000000", "647025b5", "0a029ed1"]
    verdict = check_share(job, en2, int(share["ntime"], 16), int(share["nonce"], 16))
    assert verdict.hash_hex == SLUSH["expect"]["hash"]


def test_configure_ignored_then_a_late_grant_still_applies() -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply(2, subscribe_result("aa", 4)), 0.1)
    assert out[0] == VersionRollingUnavailable(
        "no reply to mining.configure before the mining.subscribe reply"
    )
    assert session.version_mask == 0
    assert session.receive_data(reply(3), 0.2) == [Authorized(USER)]  # no second verdict
    late = session.receive_data(
        reply(1, {"version-rolling": True, "version-rolling.mask": "ffffffff"}), 0.3
    )
    assert late == [VersionRollingNegotiated(0x1FFFE000)]
    assert session.version_mask == 0x1FFFE000


@pytest.mark.parametrize(
    ("result", "error", "reason"),
    [
        (None, [20, "Method 'mining.configure' not found", None], "pool refused mining.configure"),
        ({"version-rolling": False}, None, "pool declined version-rolling"),
        ({"other-extension": True}, None, "pool declined version-rolling"),
        ("yes", None, "pool declined version-rolling"),
        (
            {"version-rolling": True, "version-rolling.mask": "00001fff"},
            None,
            "pool mask 00001fff shares no bits",
        ),
    ],
)
def test_configure_refused_carries_on_with_mask_zero(
    result: object, error: object, reason: str
) -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply(1, result, error), 0.1)
    assert one(out, VersionRollingUnavailable).reason.startswith(reason)
    assert session.version_mask == 0
    out = session.receive_data(reply(2, subscribe_result("aa", 4)) + reply(3), 0.2)
    assert only(out, VersionRollingUnavailable) == []


@pytest.mark.parametrize("mask", ["xyz", "-1", "0x1fffe000", "1fffe0000", 536862720, None])
def test_configure_with_a_malformed_mask_is_a_violation(mask: object) -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(
        reply(1, {"version-rolling": True, "version-rolling.mask": mask}), 0.1
    )
    assert "version-rolling.mask" in one(out, ProtocolViolation).description
    assert one(out, VersionRollingUnavailable).reason == "pool sent an invalid version-rolling mask"


def test_granted_mask_is_the_intersection() -> None:
    _, out = ready_session(mask="0fff0000")
    assert one(out, VersionRollingNegotiated).mask == 0x0FFFE000 & 0x0FFF0000


def test_rolling_disabled_sends_no_configure() -> None:
    session = PoolSession(settings(version_mask=0))
    out = session.start(0.0)
    assert out[0] == VersionRollingUnavailable("version rolling disabled (mask 0)")
    assert [m["method"] for m in sent(out)] == ["mining.subscribe", "mining.authorize"]
    assert [m["id"] for m in sent(out)] == [1, 2]
    out = session.receive_data(notification("mining.set_version_mask", "ffffffff"), 0.1)
    assert out == [VersionMaskChanged(0)]


def test_set_version_mask_intersects_and_applies_to_new_jobs() -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("mining.set_version_mask", "00ffe000"), 1.0)
    assert out == [VersionMaskChanged(0x00FFE000)]
    job = one(session.receive_data(notify(TESTNET), 1.1), NewJob).job
    assert job.version_mask == 0x00FFE000
    bad = session.receive_data(notification("mining.set_version_mask", "nothex!!"), 1.2)
    assert (
        "mining.set_version_mask ignored: mask: not hexadecimal"
        in one(bad, ProtocolViolation).description
    )
    assert session.version_mask == 0x00FFE000


def test_set_version_mask_applies_to_held_jobs_at_once() -> None:
    """BIP310: the new mask is valid immediately, so the pool checks submits for jobs it
    sent earlier against it too: bits only the new mask allows are sent, others refused."""
    session, _ = ready_session()
    held = one(session.receive_data(notify(TESTNET, job_id="h"), 1.0), NewJob).job
    session.receive_data(notification("mining.set_version_mask", "00ffe000"), 1.1)
    assert session.jobs["h"].version_mask == 0x00FFE000
    submit = sent([session.submit(held, bytes(4), held.ntime, 1, 0x00800000, now=1.2)])[0]
    assert submit["params"][5] == "00800000"
    with pytest.raises(WorkError, match="outside job 'h'"):
        session.submit(held, bytes(4), held.ntime, 1, 0x10000000, now=1.3)


def test_resume_accepted() -> None:
    session = PoolSession(settings(), resume_id="6b2e")
    out = session.start(0.0)
    assert sent(out)[1]["params"] == [UA, "6b2e"]
    out = session.receive_data(reply(2, subscribe_result("aa", 4, "6b2e")), 0.1)
    assert one(out, Subscribed).resumed is True


def test_resume_with_a_new_id_is_not_a_resume() -> None:
    session = PoolSession(settings(), resume_id="6b2e")
    session.start(0.0)
    out = session.receive_data(reply(2, subscribe_result("aa", 4, "ffff")), 0.1)
    assert one(out, Subscribed) == Subscribed(b"\xaa", 4, "ffff", resumed=False)
    assert session.subscription_id == "ffff"


def test_resume_refused_retries_without_the_id_and_re_authorizes() -> None:
    session = PoolSession(settings(), resume_id="stale-id")
    session.start(0.0)
    out = session.receive_data(reply(2, None, [25, "Invalid session id", None]), 0.1)
    assert sent(out) == [
        {"id": 4, "method": "mining.subscribe", "params": [UA]},
        {"id": 5, "method": "mining.authorize", "params": [USER, PASSWORD]},
    ]
    # The pool fails the first authorize (we were not subscribed then): superseded, silent.
    assert session.receive_data(reply(3, None, [25, "Not subscribed", None]), 0.2) == []
    out = session.receive_data(reply(4, subscribe_result("bb", 8, "new-id")) + reply(5), 0.3)
    assert one(out, Subscribed) == Subscribed(b"\xbb", 8, "new-id", resumed=False)
    assert one(out, Authorized) == Authorized(USER)
    assert session.state is SessionState.READY
    assert session.poll(100.0) == []  # the superseded requests never time out loudly


def test_resume_refused_twice_fails() -> None:
    session = PoolSession(settings(), resume_id="x")
    session.start(0.0)
    session.receive_data(reply(2, None, "no"), 0.1)
    out = session.receive_data(reply(4, None, [20, "Go away", None]), 0.2)
    assert one(out, SubscribeFailed).error.message == "Go away"
    assert session.state is SessionState.FAILED


def test_subscribe_refused_without_resume_fails() -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply(2, False), 0.1)
    assert one(out, SubscribeFailed).error.message == "result was false"
    assert session.state is SessionState.FAILED


@pytest.mark.parametrize(
    ("result", "field"),
    [
        ([[], "zz", 4], "extranonce1"),
        ([[], "abc", 4], "extranonce1"),
        ([[], "aa" * 33, 4], "extranonce1"),
        ([[], "aa", 33], "extranonce2_size"),
        ([[], "aa", -1], "extranonce2_size"),
        ([[], "aa", "4"], "extranonce2_size"),
        ([[], "aa", True], "extranonce2_size"),
        ([[], "aa"], "result"),
        ({"extranonce1": "aa"}, "result"),
        ("ok", "result"),
    ],
)
def test_unusable_subscribe_result_drops_the_connection(result: object, field: str) -> None:
    session = PoolSession(settings())
    session.start(0.0)
    with pytest.raises(ProtocolError, match=f"mining.subscribe result unusable: {field}"):
        session.receive_data(reply(2, result), 0.1)


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([["mining.set_difficulty", "d1"], ["mining.notify", "n1"]], "n1"),
        ([["mining.set_difficulty", "d1"]], "d1"),
        (["mining.notify", "solo"], "solo"),
        ([["mining.notify", 1234]], "1234"),
        ([["mining.notify", True]], None),
        ([], None),
        (None, None),
        ("weird", None),
        ([["mining.notify"]], None),
    ],
)
def test_subscription_id_forms(details: object, expected: str | None) -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply(2, [details, "", 0]), 0.1)
    assert one(out, Subscribed) == Subscribed(b"", 0, expected, resumed=False)


@pytest.mark.parametrize(
    ("result", "error", "reason", "code"),
    [
        (False, None, "result was false", None),
        (None, [24, "Unauthorized worker", None], "Unauthorized worker", 24),
        (None, None, "result was null", None),
        ("ok", None, 'unexpected result "ok"', None),
        (True, {"code": 24, "message": "bad"}, "bad", 24),
    ],
)
def test_authorization_failed(result: object, error: object, reason: str, code: int | None) -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply(2, subscribe_result("aa", 4)) + reply(3, result, error), 0.1)
    assert one(out, AuthorizationFailed) == AuthorizationFailed(USER, reason, code)
    assert sent(out) == []  # no suggest_difficulty after a failure
    assert session.state is SessionState.FAILED


def test_setup_requests_time_out() -> None:
    session = PoolSession(settings(setup_timeout=10.0))
    session.start(0.0)
    assert session.poll(9.9) == []
    assert session.poll(10.0) == [
        RequestTimedOut("mining.subscribe", 2, 10.0),
        RequestTimedOut("mining.authorize", 3, 10.0),
    ]
    assert session.poll(20.0) == []  # reported once; configure has no deadline of its own


def test_optional_requests_never_time_out_loudly_but_refusals_are_reported() -> None:
    session, out = ready_session(suggest_difficulty=0.5, extranonce_subscribe=True)
    assert sent(out)[3:] == [
        {"id": 4, "method": "mining.suggest_difficulty", "params": [0.5]},
        {"id": 5, "method": "mining.extranonce.subscribe", "params": []},
    ]
    refused = session.receive_data(reply(5, False, [20, "Not supported", None]), 1.0)
    assert refused == [RequestFailed("mining.extranonce.subscribe", 5, refused[0].error)]  # type: ignore[union-attr]
    assert session.receive_data(reply(4, None), 1.0) == []
    assert session.outstanding == 0


def test_suggest_difficulty_waits_for_authorize() -> None:
    session = PoolSession(settings(suggest_difficulty=1024))
    out = session.start(0.0)
    assert "mining.suggest_difficulty" not in [m["method"] for m in sent(out)]


def test_request_ids_increase_per_connection() -> None:
    session, out = ready_session()
    ids = [o.request_id for o in only(out, SendBytes)]
    session.receive_data(notify(TESTNET), 1.0)
    submits = [session.submit("1", b"\0" * 4, 1, n, now=1.0).request_id for n in range(3)]
    assert ids + submits == [1, 2, 3, 4, 5, 6]
    assert PoolSession(settings()).start(0.0)[0].request_id == 1  # type: ignore[union-attr]


def test_replies_with_string_ids_are_matched() -> None:
    session = PoolSession(settings())
    session.start(0.0)
    out = session.receive_data(reply("2", subscribe_result("aa", 4)), 0.1)
    assert only(out, Subscribed)


def test_start_twice_is_a_programming_error() -> None:
    session = PoolSession(settings())
    session.start(0.0)
    with pytest.raises(RuntimeError, match="one session per connection"):
        session.start(1.0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user": ""}, "user"),
        ({"user_agent": ""}, "user_agent"),
        ({"version_mask": -1}, "version_mask"),
        ({"version_mask": 1 << 32}, "version_mask"),
        ({"min_bit_count": 0}, "min_bit_count"),
        ({"submit_timeout": 0}, "submit_timeout"),
        ({"setup_timeout": -1}, "setup_timeout"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"max_jobs": 0}, "max_jobs"),
        ({"max_outstanding": 0}, "max_outstanding"),
        ({"max_line": 10}, "max_line"),
        ({"suggest_difficulty": 0.0}, "suggest_difficulty"),
        ({"suggest_difficulty": float("nan")}, "suggest_difficulty"),
    ],
)
def test_settings_are_validated(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        settings(**overrides)
    assert caught.value.field == field
