"""PoolSession once mining: jobs, difficulty, extranonce, pool requests, share results."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from stratum_script import (
    PASSWORD,
    SLUSH,
    TESTNET,
    UA,
    line,
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

from stratum_client.errors import InputError, WorkError
from stratum_client.protocol import (
    AuthorizationFailed,
    DifficultyChanged,
    DuplicateJobIgnored,
    ExtranonceChanged,
    NewJob,
    Output,
    PoolSession,
    PoolSilent,
    ProtocolViolation,
    ReconnectRequested,
    SendBytes,
    ShareAccepted,
    ShareRejected,
    ShowMessage,
    SubmitErrorCode,
    SubmitTimedOut,
    Subscribed,
    VersionRollingUnavailable,
)

EN2 = b"\x00\x00\x00\x01"


def _job(out: list[Output]) -> Any:
    return one(out, NewJob).job


# -- jobs -----------------------------------------------------------------------------


def test_notify_before_the_subscribe_reply_is_held_then_replayed() -> None:
    session = PoolSession(settings())
    session.start(0.0)
    early = notification("mining.set_difficulty", 64) + notify(TESTNET)
    out = session.receive_data(early, 0.1)
    assert out == [DifficultyChanged(64.0, 1.0, 0.1)]
    out = session.receive_data(reply(2, subscribe_result("57a6f098", 4)), 0.2)
    assert isinstance(out[1], Subscribed)
    job = _job(out)
    assert (job.received_at, job.difficulty, job.extranonce1) == (
        0.1,
        64.0,
        bytes.fromhex("57a6f098"),
    )


def test_clean_jobs_forget_older_jobs() -> None:
    session, _ = ready_session()
    session.receive_data(notify(TESTNET, job_id="a", clean=True), 1.0)
    session.receive_data(notify(TESTNET, job_id="b", clean=False), 2.0)
    assert list(session.jobs) == ["a", "b"]
    out = session.receive_data(notify(TESTNET, job_id="c", clean=True), 3.0)
    assert one(out, NewJob).clean is True
    assert list(session.jobs) == ["c"]
    with pytest.raises(WorkError, match=r"not submitting for job 'a'.*stale after clean_jobs"):
        session.submit("a", EN2, 0, 0, now=3.0)
    assert session.outstanding == 0


def test_repeated_job_is_ignored_but_a_clean_repeat_is_taken() -> None:
    session, _ = ready_session()
    first = _job(session.receive_data(notify(TESTNET, job_id="j1", clean=False), 1.0))
    assert session.receive_data(notify(TESTNET, job_id="j1", clean=False), 2.0) == [
        DuplicateJobIgnored("j1")
    ]
    assert session.jobs["j1"] is first
    again = _job(session.receive_data(notify(TESTNET, job_id="j1", clean=True), 3.0))
    assert session.jobs["j1"] is again


def test_job_id_reused_for_other_work_replaces_the_job() -> None:
    """The pool checks submits against its latest meaning of an id, so the session must."""
    session, _ = ready_session()
    first = _job(session.receive_data(notify(TESTNET, job_id="j1", clean=False), 1.0))
    second = _job(session.receive_data(notify(SLUSH, job_id="j1", clean=False), 2.0))
    assert session.jobs["j1"] is second
    with pytest.raises(WorkError, match="differs from the current one"):
        session.submit(first, EN2, first.ntime, 2, now=3.0)


def test_notify_repeated_after_set_extranonce_submits_with_the_new_extranonce1() -> None:
    """set_extranonce then the same (non-clean) notify again: a share for that job id,
    built with the new extranonce1, is sent, not refused as "different work"."""
    session, _ = ready_session(en1="57a6f098", en2_size=4)
    _job(session.receive_data(notify(TESTNET, job_id="j", clean=False), 1.0))
    session.receive_data(notification("mining.set_extranonce", "deadbeef", 4), 2.0)
    out = session.receive_data(notify(TESTNET, job_id="j", clean=False), 3.0)
    assert out == [DuplicateJobIgnored("j")]  # same work as the restamped job
    held = session.jobs["j"]
    assert held.extranonce1.hex() == "deadbeef"
    share = sent([session.submit(held, EN2, held.ntime, 2, now=4.0)])[0]
    assert share["params"][1] == "j"


def test_resolve_ignores_arrival_time_clean_flag_and_difficulty() -> None:
    """After a resume the pool announces the same job again: a share found on the copy
    received earlier (other arrival time, clean flag, stamped difficulty) is still sent."""
    session, _ = ready_session()
    early = _job(session.receive_data(notify(TESTNET, job_id="j", clean=False), 1.0))
    session.receive_data(notification("mining.set_difficulty", 8), 1.5)
    late = _job(session.receive_data(notify(TESTNET, job_id="j", clean=True), 2.0))
    assert (late.received_at, late.clean_jobs, late.difficulty) != (
        early.received_at,
        early.clean_jobs,
        early.difficulty,
    )
    assert sent([session.submit(early, EN2, early.ntime, 2, now=3.0)])[0]["params"][1] == "j"


def test_job_table_is_bounded() -> None:
    session, _ = ready_session(max_jobs=3)
    for index in range(5):
        session.receive_data(notify(TESTNET, job_id=f"j{index}", clean=False), float(index))
    assert list(session.jobs) == ["j2", "j3", "j4"]
    with pytest.raises(WorkError, match="'j0'"):
        session.submit("j0", EN2, 0, 0, now=9.0)


@pytest.mark.parametrize(
    ("index", "value", "field"),
    [
        (1, "zz" * 32, "notify.prevhash"),
        (4, ["00"], "notify.merkle_branch[0]"),
        (5, 536870912, "notify.version"),
        (0, 7, "notify.job_id"),
        (8, "true", "notify.clean_jobs"),
    ],
)
def test_bad_notify_is_reported_and_ignored(index: int, value: object, field: str) -> None:
    session, _ = ready_session()
    params = list(TESTNET["notify"])
    params[index] = value
    out = session.receive_data(notification("mining.notify", *params), 1.0)
    assert f"mining.notify ignored: params: {field}" in one(out, ProtocolViolation).description
    assert len(session.jobs) == 0


def test_short_notify_is_reported() -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("mining.notify", "x", "y"), 1.0)
    assert "expected at least 9 params" in one(out, ProtocolViolation).description


# -- difficulty -----------------------------------------------------------------------


def test_difficulty_applies_to_jobs_from_now_on() -> None:
    session, _ = ready_session(difficulty=512)
    old = _job(session.receive_data(notify(TESTNET, job_id="old"), 1.0))
    out = session.receive_data(notification("mining.set_difficulty", 1024.5), 2.0)
    assert out == [DifficultyChanged(1024.5, 512.0, 2.0)]
    assert session.difficulty == 1024.5
    new = _job(session.receive_data(notify(TESTNET, job_id="new"), 3.0))
    assert (old.difficulty, new.difficulty) == (512.0, 1024.5)


@pytest.mark.parametrize(
    "params",
    [[0], [-1], [0.0], [float("nan")], [float("inf")], [-math.inf], [1e300], [2**224 + 1],
     [10**400], ["512"], [True], [None], [[512]], []],
)  # fmt: skip
def test_invalid_difficulty_keeps_the_old_one(params: list[object]) -> None:
    session, _ = ready_session(difficulty=512)
    data = json.dumps({"id": None, "method": "mining.set_difficulty", "params": params}).encode()
    out = session.receive_data(data + b"\n", 1.0)
    assert one(out, ProtocolViolation).description.startswith("mining.set_difficulty ignored: ")
    assert session.difficulty == 512.0


@pytest.mark.parametrize("value", [0.0001, 1, 2**224, 1e-12, 65536.0])
def test_valid_difficulties(value: float) -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("mining.set_difficulty", value), 1.0)
    assert one(out, DifficultyChanged).difficulty == float(value)


# -- extranonce -----------------------------------------------------------------------


def test_set_extranonce_mid_session() -> None:
    session, _ = ready_session(en1="57a6f098", en2_size=4)
    old = _job(session.receive_data(notify(TESTNET, job_id="old"), 1.0))
    out = session.receive_data(notification("mining.set_extranonce", "deadbeef01", 6), 2.0)
    assert out == [ExtranonceChanged(bytes.fromhex("deadbeef01"), 6)]
    new = _job(session.receive_data(notify(TESTNET, job_id="new"), 3.0))
    assert (old.extranonce1.hex(), old.extranonce2_size) == ("57a6f098", 4)
    assert (new.extranonce1.hex(), new.extranonce2_size) == ("deadbeef01", 6)
    # The pool hashes every later submit with the new extranonce1, so the held job was
    # restamped: work built on the old one would be a certain reject and is refused.
    held = session.jobs["old"]
    assert (held.extranonce1.hex(), held.extranonce2_size) == ("deadbeef01", 6)
    with pytest.raises(WorkError, match="differs from the current one"):
        session.submit(old, EN2, 1, 2, now=4.0)
    assert sent([session.submit(held, b"\x02" * 6, 1, 2, now=4.0)])[0]["params"][2] == "02" * 6
    assert sent([session.submit(new, b"\x01" * 6, 1, 2, now=4.0)])[0]["params"][2] == "01" * 6
    with pytest.raises(WorkError, match="extranonce2 is 4 bytes; job 'new' needs 6"):
        session.submit(new, EN2, 1, 2, now=4.0)


def test_set_extranonce_without_size_keeps_the_size() -> None:
    session, _ = ready_session(en2_size=8)
    assert session.receive_data(notification("mining.set_extranonce", "aa"), 1.0) == [
        ExtranonceChanged(b"\xaa", 8)
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([], "params"),
        (["xyz", 4], "extranonce1"),
        (["aa", 40], "extranonce2_size"),
        ([5, 4], "extranonce1"),
    ],
)
def test_bad_set_extranonce_is_ignored(params: list[object], field: str) -> None:
    session, _ = ready_session(en1="57a6f098", en2_size=4)
    out = session.receive_data(notification("mining.set_extranonce", *params), 1.0)
    assert f"mining.set_extranonce ignored: {field}" in one(out, ProtocolViolation).description
    assert (session.extranonce1, session.extranonce2_size) == (bytes.fromhex("57a6f098"), 4)


# -- requests and notices from the pool -----------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (["pool2.example.com", 3334, 5], ReconnectRequested("pool2.example.com", 3334, 5.0)),
        (["pool2.example.com", "3334", "5"], ReconnectRequested("pool2.example.com", 3334, 5.0)),
        (["pool2.example.com", "3334"], ReconnectRequested("pool2.example.com", 3334, 0.0)),
        ([], ReconnectRequested(None, None, 0.0)),
        ([None, None, None], ReconnectRequested(None, None, 0.0)),
        (["", "", ""], ReconnectRequested(None, None, 0.0)),
        ([None, 443, 0.5], ReconnectRequested(None, 443, 0.5)),
        (["h", 1, 10**400], None),
        (["h", 0], None),
        (["h", 65536], None),
        (["h", "33a"], None),
        (["h", "٣٣٣"], None),
        (["h", True], None),
        (["h", 3.5], None),
        (["bad host", 1], None),
        ([5], None),
        (["h", 1, -1], None),
        (["h", 1, "soon"], None),
        (["h", 1, "nan"], None),
    ],
)
def test_client_reconnect(params: list[object], expected: ReconnectRequested | None) -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("client.reconnect", *params), 1.0)
    if expected is None:
        assert one(out, ProtocolViolation).description.startswith("client.reconnect ignored: ")
    else:
        assert out == [expected]


def test_show_message_escapes_control_characters() -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("client.show_message", "hi\x1b[2J\nthere ✓"), 1.0)
    assert out == [ShowMessage("hi\\x1b[2J\\x0athere ✓")]
    bad = session.receive_data(notification("client.show_message", 5), 1.0)
    assert "text: expected a string" in one(bad, ProtocolViolation).description


def test_get_version_and_ping_are_answered() -> None:
    session, _ = ready_session()
    out = session.receive_data(
        notification("client.get_version", id_=41) + notification("mining.ping", id_="p1"), 1.0
    )
    assert [o.data for o in only(out, SendBytes)] == [
        b'{"id":41,"result":"' + UA.encode() + b'","error":null}\n',
        b'{"id":"p1","result":"pong","error":null}\n',
    ]
    assert [o.method for o in only(out, SendBytes)] == [
        "reply:client.get_version",
        "reply:mining.ping",
    ]


def test_requests_without_an_id_cannot_be_answered() -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("mining.ping"), 1.0)
    assert out == [ProtocolViolation("mining.ping without an id cannot be answered")]


def test_unknown_methods() -> None:
    session, _ = ready_session()
    out = session.receive_data(notification("mining.set_goal", "x", id_=9), 1.0)
    assert sent(out) == [
        {"id": 9, "result": None, "error": [-32601, "Method not found: mining.set_goal", None]}
    ]
    assert "unknown method" in one(out, ProtocolViolation).description
    assert one(out, SendBytes).method == "reply:method-not-found"
    out = session.receive_data(notification("mining.set_goal", "x"), 1.0)
    assert out == [ProtocolViolation('ignored unknown method "mining.set_goal" ["x"]')]


def test_reply_to_an_unknown_id_is_a_violation() -> None:
    session, _ = ready_session()
    for request_id in (999, None, "abc"):
        out = session.receive_data(reply(request_id, True), 1.0)
        assert "reply to unknown request id" in one(out, ProtocolViolation).description


# -- shares ---------------------------------------------------------------------------

K = SubmitErrorCode


def err(error: object) -> dict[str, object]:
    return {"result": None, "error": error}


def why(reason: str) -> dict[str, object]:
    return {"result": False, "error": None, "reject-reason": reason}


REJECTS = [
    (err([23, "Low difficulty share", None]), 23, K.LOW_DIFFICULTY, "Low difficulty share"),
    ({"result": False, "error": [21, "Job not found", None]}, 21, K.JOB_NOT_FOUND, "Job not found"),
    (err([22, "Duplicate share", "trace"]), 22, K.DUPLICATE_SHARE, "Duplicate share"),
    (err([24, "Unauthorized worker", None]), 24, K.UNAUTHORIZED, "Unauthorized worker"),
    (err([25, "Not subscribed", None]), 25, K.NOT_SUBSCRIBED, "Not subscribed"),
    (err([20, "Other/Unknown", None]), 20, K.OTHER, "Other/Unknown"),
    (err({"code": 21, "message": "Stale"}), 21, K.JOB_NOT_FOUND, "Stale"),
    (err({"code": "23", "message": "low diff"}), 23, K.LOW_DIFFICULTY, "low diff"),
    (err("Duplicate share"), None, K.DUPLICATE_SHARE, "Duplicate share"),
    (why("Above target"), None, K.LOW_DIFFICULTY, "Above target"),
    (why("high-hash"), None, K.LOW_DIFFICULTY, "high-hash"),
    ({"result": False, "error": None}, None, K.OTHER, "result was false"),
    (err(None), None, K.OTHER, "result was null"),
    ({"result": 1, "error": None}, None, K.OTHER, "unexpected result 1"),
    ({"result": True, "error": [21, "Stale", None]}, 21, K.JOB_NOT_FOUND, "Stale"),
    (err([99, "Brand new reason", None]), 99, K.OTHER, "Brand new reason"),
    (err([-32000, "stale work", None]), -32000, K.JOB_NOT_FOUND, "stale work"),
]


@pytest.mark.parametrize(("fields", "code", "kind", "reason"), REJECTS)
def test_every_submit_error_form(
    fields: dict[str, object], code: int | None, kind: SubmitErrorCode, reason: str
) -> None:
    session, _ = ready_session()
    session.receive_data(notify(TESTNET), 1.0)
    submit = session.submit("1", EN2, 0x64B3F3EC, 7, now=2.0)
    out = session.receive_data(line(id_=submit.request_id, **fields), 2.5)
    assert out == [ShareRejected(submit.request_id or 0, "1", code, kind, reason, 0.5)]
    assert session.outstanding == 0


def test_accepted_with_an_empty_error_list() -> None:
    session, _ = ready_session()
    session.receive_data(notify(TESTNET), 1.0)
    submit = session.submit("1", EN2, 1, 2, now=2.0)
    out = session.receive_data(reply(submit.request_id, True, []), 2.1)
    assert only(out, ShareAccepted)


def test_submit_validation() -> None:
    session, _ = ready_session()
    job = _job(session.receive_data(notify(TESTNET), 1.0))
    with pytest.raises(WorkError, match="never received"):
        session.submit("nope", EN2, 1, 2, now=1.0)
    with pytest.raises(WorkError, match="nonce 4294967296 does not fit"):
        session.submit(job, EN2, 1, 2**32, now=1.0)
    with pytest.raises(WorkError, match="ntime -1 does not fit"):
        session.submit(job, EN2, -1, 2, now=1.0)
    with pytest.raises(WorkError, match="version_bits 00001000 outside job '1'"):
        session.submit(job, EN2, 1, 2, 0x1000, now=1.0)
    other, _ = ready_session(en1="00112233")
    foreign = _job(other.receive_data(notify(TESTNET), 1.0))
    with pytest.raises(WorkError, match="differs from the current one"):
        session.submit(foreign, EN2, 1, 2, now=1.0)
    assert session.outstanding == 0


def test_submit_without_rolling_refuses_version_bits() -> None:
    session, _ = ready_session(mask=None)
    session.receive_data(notify(TESTNET), 1.0)
    with pytest.raises(WorkError, match="mask 00000000"):
        session.submit("1", EN2, 1, 2, 0x2000, now=1.0)
    assert len(sent([session.submit("1", EN2, 1, 2, now=1.0)])[0]["params"]) == 5


@pytest.mark.parametrize("form", ["xor", "replace"])
def test_jobs_carry_the_pools_version_bits_form(form: str) -> None:
    session, _ = ready_session(version_bits_form=form)
    assert _job(session.receive_data(notify(TESTNET), 1.0)).version_bits_form == form


def test_an_unknown_version_bits_form_is_refused() -> None:
    with pytest.raises(InputError, match="version_bits_form: must be one of xor, replace"):
        settings(version_bits_form="or")


def test_rolling_jobs_always_send_six_params() -> None:
    session, _ = ready_session()
    session.receive_data(notify(TESTNET), 1.0)
    assert sent([session.submit("1", EN2, 1, 2, now=1.0)])[0]["params"][5] == "00000000"


def test_submit_timeout_and_a_late_reply() -> None:
    session, _ = ready_session(submit_timeout=30.0)
    session.receive_data(notify(TESTNET), 1.0)
    first = session.submit("1", EN2, 1, 2, now=10.0)
    second = session.submit("1", EN2, 1, 3, now=20.0)
    assert session.poll(39.9) == []
    assert session.poll(40.0) == [SubmitTimedOut(first.request_id or 0, "1", 30.0)]
    assert session.outstanding == 1
    late = session.receive_data(reply(first.request_id, True), 45.0)
    assert late == [ShareAccepted(first.request_id or 0, "1", 35.0, late=True)]
    on_time = session.receive_data(
        reply(second.request_id, False, [23, "Low difficulty", None]), 45.0
    )
    assert one(on_time, ShareRejected).late is False
    assert session.receive_data(reply(first.request_id, True), 46.0)[0] == ProtocolViolation(
        f"reply to unknown request id {first.request_id}: result=true error=None"
    )


def test_outstanding_table_is_bounded() -> None:
    session, _ = ready_session(max_outstanding=4)
    session.receive_data(notify(TESTNET), 1.0)
    ids = [session.submit("1", EN2, 1, n, now=2.0 + n).request_id for n in range(6)]
    assert session.outstanding == 4
    timed_out = session.poll(9.0)
    assert [e.request_id for e in only(timed_out, SubmitTimedOut)] == ids[:2]
    assert session.receive_data(reply(ids[0], True), 9.5) == [
        ShareAccepted(ids[0] or 0, "1", 7.5, late=True)
    ]


def test_silent_pool_is_reported_once_until_it_speaks() -> None:
    session, _ = ready_session(idle_timeout=120.0, now=0.0)
    assert session.poll(119.0) == []
    assert session.poll(120.0) == [PoolSilent(120.0)]
    assert session.poll(130.0) == []
    session.receive_data(notification("mining.set_difficulty", 8), 131.0)
    assert session.poll(250.0) == []
    assert session.poll(251.0) == [PoolSilent(120.0)]


def test_idle_timeout_can_be_disabled_and_needs_start() -> None:
    assert PoolSession(settings()).poll(1e9) == []
    session, _ = ready_session(idle_timeout=None)
    assert session.poll(1e9) == []


# -- secrets --------------------------------------------------------------------------


def test_password_never_in_repr_or_events() -> None:
    session = PoolSession(settings(suggest_difficulty=16.0), resume_id="r")
    outputs = session.start(0.0)
    conversation = (
        reply(1, None, f"configure? {PASSWORD}")
        + reply(2, None, [25, f"bad resume for pass {PASSWORD}", None])
        + notification("client.show_message", f"hello {PASSWORD}")
        + reply(4, subscribe_result("aa", 4))
        + notification("mining.set_difficulty", PASSWORD)
        + notification("mining.notify", PASSWORD)
        + notification(PASSWORD, PASSWORD, id_=PASSWORD)
        + line(id_=77, result=PASSWORD, error=None)
        + reply(5, False, [24, f"Wrong password {PASSWORD} for worker", None])
    )
    outputs += session.receive_data(conversation, 1.0)
    outputs += session.poll(1000.0)
    assert one(outputs, AuthorizationFailed).reason == "Wrong password *** for worker"
    assert one(outputs, ShowMessage).text == "hello ***"
    assert (
        one(outputs, VersionRollingUnavailable).reason
        == "pool refused mining.configure: configure? ***"
    )
    # Only the two authorize requests carry it, and the pool's own echo in our reply.
    assert sum(PASSWORD.encode() in o.data for o in only(outputs, SendBytes)) == 3
    texts = [repr(o) for o in outputs] + [repr(session), repr(session.settings), str(vars(session))]
    assert [text for text in texts if PASSWORD in text] == []
