"""Signal payloads: numbers, JSON paths, scaling and sign, garbage and staleness."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.energy.signals import (
    MAX_PAYLOAD_BYTES,
    SignalBoard,
    SignalError,
    SignalSpec,
    SignalUpdate,
    parse_path,
    parse_payload,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$.power.export", ("power", "export")),
        ("power.export", ("power", "export")),
        ("$.values[0].w", ("values", 0, "w")),
        ("values[-1]", ("values", -1)),
        ("[2]", (2,)),
        ("$['odd key.with dots'][1]", ("odd key.with dots", 1)),
        ('$["a"].b', ("a", "b")),
        ("$", ()),
        ("state", ("state",)),
    ],
)
def test_paths_parse(text: str, expected: tuple[object, ...]) -> None:
    assert parse_path(text) == expected


@pytest.mark.parametrize("text", ["", "$.a..b", "$.a[", "$.a[x]", "a b]", "$.a['b]"])
def test_bad_paths_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_path(text)


@pytest.mark.parametrize(
    ("payload", "path", "expected"),
    [
        (b"1234", (), 1234.0),
        (b" -12.5\n", (), -12.5),
        (b"1e3", (), 1000.0),
        (b"42", (), 42.0),
        (b'"17.5"', (), 17.5),
        (b'{"power": {"export": 350}}', ("power", "export"), 350.0),
        (b'{"values": [1, 2, {"w": "7.25"}]}', ("values", 2, "w"), 7.25),
        (b'{"values": [1, 2, 3]}', ("values", -1), 3.0),
        (b"[10, 20]", (1,), 20.0),
        (b'{"state": "231", "unit": "gCO2eq/kWh"}', ("state",), 231.0),
    ],
)
def test_payloads_parse(payload: bytes, path: tuple[str | int, ...], expected: float) -> None:
    assert parse_payload(payload, path) == expected


@pytest.mark.parametrize(
    ("payload", "path", "problem"),
    [
        (b"", (), "empty payload"),
        (b"   ", (), "empty payload"),
        (b"unavailable", (), "sensor state is 'unavailable'"),
        (b"unknown", (), "sensor state is 'unknown'"),
        (b"\xff\xfe", (), "not UTF-8"),
        (b"12 W", (), "neither a number nor valid JSON"),
        (b"NaN", (), "sensor state is 'NaN'"),
        (b'{"a": NaN}', ("a",), "JSON constant NaN"),
        (b"Infinity", (), "JSON constant Infinity"),
        (b"1e999", (), "not a finite number"),
        (b"true", (), "true, not a number"),
        (b"null", (), "sensor state is 'null'"),
        (b'{"a": 1}', (), "payload is a JSON object; configure a path"),
        (b'{"a": 1}', ("b",), "key 'b' missing at the top level"),
        (b'{"a": {"b": 1}}', ("a", "c"), "key 'c' missing at $.a"),
        (b'{"a": [1]}', ("a", 3), "index [3] out of range at $.a"),
        (b'{"a": 1}', ("a", 0), "expected a list at $.a"),
        (b"[1]", ("a",), "expected an object at the top level"),
        (b'{"a": "high"}', ("a",), "$.a is a string"),
        (b'{"a": null}', ("a",), "$.a is null"),
        (b'{"a": [1]}', ("a",), "$.a is a list"),
        (b"[" * 100_000, (), "exceeds"),
    ],
    ids=lambda value: repr(value)[:30] if isinstance(value, bytes) else None,
)
def test_garbage_is_explained(payload: bytes, path: tuple[str | int, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_payload(payload, path)


def test_deep_json_is_an_error_not_a_crash() -> None:
    deep = b"[" * 20_000 + b"]" * 20_000
    assert len(deep) <= MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError, match="neither a number nor valid JSON"):
        parse_payload(deep, (0,))


def test_scale_and_sign_convention() -> None:
    grid = SignalSpec("surplus", "meter/grid", ("power",), scale=1000.0, invert=True)
    board = SignalBoard([grid])
    update = board.update("surplus", b'{"power": -0.35}', now=10.0)
    assert isinstance(update, SignalUpdate)
    assert update.value == pytest.approx(350.0)
    assert board.value("surplus", 10.0) == pytest.approx(350.0)


def test_garbage_never_raises_and_names_topic() -> None:
    board = SignalBoard([SignalSpec("carbon_intensity", "ha/carbon/state", max_age=60)])
    assert isinstance(board.update("carbon_intensity", b"230", now=0.0), SignalUpdate)
    error = board.update("carbon_intensity", b"unavailable", now=5.0)
    assert isinstance(error, SignalError)
    assert "ha/carbon/state" in error.message
    assert "unavailable" in error.message
    assert board.value("carbon_intensity", 5.0) is None, "garbage must invalidate the value"
    assert board.status(5.0)["carbon_intensity"].state == "error"
    assert "unavailable" in (board.problem("carbon_intensity", 5.0) or "")
    board.update("carbon_intensity", b"240", now=6.0)
    assert board.value("carbon_intensity", 6.0) == 240.0


def test_unknown_signal_is_an_error_value() -> None:
    board = SignalBoard([])
    result = board.update("nope", b"1", now=0.0)
    assert isinstance(result, SignalError)
    assert board.value("nope", 0.0) is None
    assert board.problem("nope", 0.0) == "signal nope is not configured"


def test_staleness() -> None:
    board = SignalBoard([SignalSpec("price", "p", max_age=30.0)])
    assert board.value("price", 0.0) is None
    assert board.status(0.0)["price"].state == "missing"
    assert "no value yet on topic 'p'" in (board.problem("price", 0.0) or "")
    board.update("price", b"0.21", now=100.0)
    assert board.value("price", 130.0) == 0.21
    assert board.value("price", 130.5) is None
    status = board.status(130.5)["price"]
    assert status.state == "stale"
    assert status.value == 0.21
    assert status.age == pytest.approx(30.5)
    assert "stale: last value 30 s ago (limit 30 s)" in (status.problem or "")
    assert board.updated_at("price") == 100.0


def test_link_problem_is_mentioned() -> None:
    board = SignalBoard([SignalSpec("price", "p", max_age=1.0)])
    board.link_problem = "[Errno 111] Connection refused"
    assert "broker: [Errno 111] Connection refused" in (board.problem("price", 0.0) or "")


def test_one_topic_feeds_several_signals() -> None:
    board = SignalBoard(
        [
            SignalSpec("surplus", "p1/meter", ("returned",), scale=1000.0),
            SignalSpec("grid_import", "p1/meter", ("delivered",), scale=1000.0),
            SignalSpec("price", "tariff"),
        ]
    )
    assert board.topics() == ("p1/meter", "tariff")
    results = board.feed("p1/meter", b'{"delivered": 0.0, "returned": 0.4}', now=1.0)
    assert [type(r) for r in results] == [SignalUpdate, SignalUpdate]
    assert board.value("surplus", 1.0) == pytest.approx(400.0)
    assert board.value("grid_import", 1.0) == 0.0
    assert board.feed("elsewhere", b"1", now=1.0) == []


def test_duplicate_signal_names_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        SignalBoard([SignalSpec("price", "a"), SignalSpec("price", "b")])


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@given(
    st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.text(max_size=3) | st.integers(-3, 3), max_size=3),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != 0),
)
def test_update_never_raises(payload: bytes, path: list[str | int], scale: float) -> None:
    board = SignalBoard([SignalSpec("x", "t", tuple(path), scale=scale)])
    result = board.update("x", payload, now=0.0)
    if isinstance(result, SignalUpdate):
        assert math.isfinite(result.value)
        assert board.value("x", 0.0) == result.value
    else:
        assert result.problem
        assert board.value("x", 0.0) is None
