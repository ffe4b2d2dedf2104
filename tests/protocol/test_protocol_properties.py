"""Properties: no pool input makes the codec or session raise anything but our errors."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stratum_script import SLUSH, TESTNET, ready_session

from stratum_client.errors import ProtocolError, StratumClientError
from stratum_client.protocol import LineCodec, PoolSession

CAP = 256
VALID_LINES = [
    b'{"id":null,"method":"mining.set_difficulty","params":[8]}\n',
    b'{"id":3,"result":true,"error":null}\n',
    b"\r\n",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "00", "1fffe000", "57a6f098", "mining.notify", "ffffffff" * 8])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
METHODS = [
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.show_message",
    "client.get_version",
    "mining.ping",
    "mining.unknown",
]
ids = (
    st.none()
    | st.integers(min_value=-2, max_value=12)
    | st.text(max_size=3)
    | st.sampled_from(["1", "4"])
)


@st.composite
def notify_variants(draw: st.DrawFn) -> dict[str, Any]:
    """A real notify with one field replaced (or a param dropped), exercising deep validation."""
    params = list(draw(st.sampled_from([TESTNET["notify"], SLUSH["notify"]])))
    if draw(st.booleans()):
        params[draw(st.integers(0, len(params) - 1))] = draw(json_values)
    else:
        del params[draw(st.integers(0, len(params) - 1)) :]
    return {"id": None, "method": "mining.notify", "params": params}


notifications = st.fixed_dictionaries(
    {
        "method": st.sampled_from(METHODS) | st.text(max_size=12),
        "params": st.lists(json_values, max_size=5),
    },
    optional={"id": ids},
)
responses = st.fixed_dictionaries(
    {"id": ids},
    optional={"result": json_values, "error": json_values, "reject-reason": json_values},
)
messages = notifications | responses | notify_variants() | json_values


def _line(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


@given(st.lists(st.binary(max_size=2 * CAP) | st.sampled_from(VALID_LINES), max_size=30))
def test_codec_only_raises_protocol_errors_and_stays_bounded(chunks: list[bytes]) -> None:
    codec = LineCodec(max_line=CAP)
    for chunk in chunks:
        try:
            codec.feed(chunk)
        except ProtocolError:
            assert codec.buffered == 0
            return
        assert codec.buffered <= CAP


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_split_points_do_not_change_the_result(cuts: list[bytes]) -> None:
    data = b"".join(VALID_LINES) * 3
    whole = LineCodec().feed(data)
    codec, pieces, start = LineCodec(), [], 0
    for cut in cuts:
        end = min(len(data), start + len(cut))
        pieces.extend(codec.feed(data[start:end]))
        start = end
    pieces.extend(codec.feed(data[start:]))
    assert pieces == whole


def _drive(session: PoolSession, steps: list[tuple[str, Any]]) -> None:
    now = 10.0
    for kind, value in steps:
        now += 1.0
        try:
            if kind == "line":
                session.receive_data(_line(value), now)
            elif kind == "submit":
                job_id, en2, nonce, bits = value
                session.submit(job_id, en2, 0x64B3F3EC, nonce, bits, now=now)
            else:
                session.poll(now + value)
        except ProtocolError:
            return  # the connection would be dropped here
        except StratumClientError:
            if kind != "submit":  # local refusals are only for our own submits
                raise
        assert session.outstanding <= session.settings.max_outstanding
        assert len(session.jobs) <= session.settings.max_jobs
        repr(session)


steps = st.lists(
    st.tuples(st.just("line"), messages)
    | st.tuples(
        st.just("submit"),
        st.tuples(
            st.sampled_from(["1", "esp", "x"]),
            st.binary(min_size=3, max_size=5),
            st.integers(-1, 2**32),
            st.sampled_from([0, 0x2000, 0x1000]),
        ),
    )
    | st.tuples(st.just("poll"), st.floats(0, 500)),
    max_size=25,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_session_after_handshake_survives_anything(script: list[tuple[str, Any]]) -> None:
    session, _ = ready_session(max_jobs=4, max_outstanding=8)
    _drive(session, script)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, max_size=15), st.sampled_from([None, "resume-me"]))
def test_session_during_handshake_survives_anything(
    values: list[object], resume: str | None
) -> None:
    from stratum_script import settings as make_settings

    session = PoolSession(make_settings(), resume_id=resume)
    session.start(0.0)
    _drive(session, [("line", value) for value in values])


@given(st.lists(json_values, max_size=10))
def test_unstarted_session_survives_anything(values: list[object]) -> None:
    from stratum_script import settings as make_settings

    _drive(PoolSession(make_settings()), [("line", value) for value in values])
