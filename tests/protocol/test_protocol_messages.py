"""Error forms pools use, reject classification and message typing."""

from __future__ import annotations

import pytest

from stratum_client.errors import ProtocolError
from stratum_client.protocol import (
    Notification,
    Response,
    StratumError,
    SubmitErrorCode,
    parse_error,
    parse_message,
)
from stratum_client.protocol.messages import preview


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([21, "Job not found", None], StratumError(21, "Job not found")),
        (
            [23, "Low difficulty share", "Traceback..."],
            StratumError(23, "Low difficulty share", "Traceback..."),
        ),
        (["22", "Duplicate share"], StratumError(22, "Duplicate share")),
        ([99], StratumError(99, "error 99")),
        (["Stale share"], StratumError(None, "Stale share")),
        ({"code": 24, "message": "Unauthorized worker"}, StratumError(24, "Unauthorized worker")),
        ({"code": -1, "msg": "odd"}, StratumError(-1, "odd")),
        ({"code": 25}, StratumError(25, '{"code":25}')),
        ("Above target", StratumError(None, "Above target")),
        (21, StratumError(21, "error 21")),
        (True, StratumError(None, "error true")),
        ([None, {"nested": 1}], StratumError(None, "null", {"nested": 1})),
        (None, None),
        (False, None),
        ([], None),
        ({}, None),
        ("", None),
    ],
)
def test_parse_error_forms(raw: object, expected: StratumError | None) -> None:
    assert parse_error(raw) == expected


def test_long_codes_in_text_are_not_parsed() -> None:
    assert parse_error(["9" * 30, "x"]) == StratumError(None, "9" * 30, "x")
    assert parse_error(["--5", "x"]) == StratumError(None, "--5", "x")
    assert parse_error(["²", "x"]) == StratumError(None, "²", "x")


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (20, "", SubmitErrorCode.OTHER),
        (21, "", SubmitErrorCode.JOB_NOT_FOUND),
        (22, "", SubmitErrorCode.DUPLICATE_SHARE),
        (23, "", SubmitErrorCode.LOW_DIFFICULTY),
        (24, "", SubmitErrorCode.UNAUTHORIZED),
        (25, "", SubmitErrorCode.NOT_SUBSCRIBED),
        (None, "Stale share", SubmitErrorCode.JOB_NOT_FOUND),
        (None, "high-hash", SubmitErrorCode.LOW_DIFFICULTY),
        (None, "Above target", SubmitErrorCode.LOW_DIFFICULTY),
        (None, "duplicate", SubmitErrorCode.DUPLICATE_SHARE),
        (None, "Worker not authorized", SubmitErrorCode.UNAUTHORIZED),
        (None, "Not subscribed", SubmitErrorCode.NOT_SUBSCRIBED),
        (-32601, "Job not found", SubmitErrorCode.JOB_NOT_FOUND),
        (99, "whatever", SubmitErrorCode.OTHER),
    ],
)
def test_classify(code: int | None, message: str, kind: SubmitErrorCode) -> None:
    assert SubmitErrorCode.classify(code, message) is kind
    assert StratumError(code, message).kind is kind


def test_error_str_and_json() -> None:
    assert str(StratumError(23, "Low difficulty")) == "Low difficulty (code 23)"
    assert str(StratumError(None, "Stale")) == "Stale"
    assert StratumError(-32601, "nope").to_json() == [-32601, "nope", None]


def test_failure_covers_false_null_and_reject_reason() -> None:
    assert Response(1, True).failure() is None
    assert Response(1, [1, 2]).failure() is None
    assert Response(1, False, reject_reason="Stale").failure() == StratumError(None, "Stale")
    assert Response(1, False).failure() == StratumError(None, "result was false")
    assert Response(1, None).failure() == StratumError(None, "result was null")
    error = StratumError(21, "Job not found")
    assert Response(1, True, error).failure() == error


def test_parse_message_types() -> None:
    assert parse_message(
        {"id": 4, "result": False, "error": None, "reject-reason": "Stale"}
    ) == Response(4, False, None, "Stale")
    assert parse_message({"method": "mining.notify", "params": [1]}) == Notification(
        "mining.notify", [1]
    )
    assert parse_message({"id": None, "error": "boom"}) == Response(
        None, None, StratumError(None, "boom")
    )
    assert parse_message({"id": 1, "result": 1, "reject-reason": 5}).reject_reason == "5"  # type: ignore[union-attr]


def test_parse_message_rejects_non_objects() -> None:
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        parse_message([1])


def test_preview_truncates() -> None:
    text = preview("a" * 500)
    assert len(text) == 120
    assert text.endswith("...")
    assert preview({"a": [1, 2]}) == '{"a":[1,2]}'
