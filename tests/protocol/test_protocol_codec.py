"""LineCodec: framing, the hard line cap, envelope errors and poisoning."""

from __future__ import annotations

import json

import pytest

from stratum_client.errors import LineTooLongError, ProtocolError
from stratum_client.protocol import (
    LineCodec,
    Notification,
    Request,
    Response,
    StratumError,
    encode,
)

PING = b'{"id":7,"method":"mining.ping","params":[]}'


def test_one_line_one_message() -> None:
    (message,) = LineCodec().feed(PING + b"\n")
    assert message == Notification("mining.ping", [], 7)
    assert message.expects_reply


def test_several_lines_in_one_chunk_and_a_partial_tail() -> None:
    codec = LineCodec()
    messages = codec.feed(PING + b"\n" + PING + b"\n" + PING[:10])
    assert len(messages) == 2
    assert codec.buffered == 10
    assert codec.feed(PING[10:] + b"\n") == [Notification("mining.ping", [], 7)]
    assert codec.buffered == 0


def test_byte_by_byte_delivery() -> None:
    codec = LineCodec()
    messages = [m for byte in PING + b"\n" for m in codec.feed(bytes([byte]))]
    assert messages == [Notification("mining.ping", [], 7)]


def test_crlf_blank_and_whitespace_lines_are_tolerated() -> None:
    data = b"\n\r\n   \r\n" + PING + b"\r\n\n" + b'{"id":1,"result":true,"error":null}\r\n'
    messages = LineCodec().feed(data)
    assert messages == [Notification("mining.ping", [], 7), Response(1, True, None)]


def test_null_params_become_empty_list() -> None:
    (message,) = LineCodec().feed(b'{"id":null,"method":"client.show_message","params":null}\n')
    assert message == Notification("client.show_message", [], None)


def test_line_at_the_cap_is_accepted() -> None:
    codec = LineCodec(max_line=len(PING))
    assert codec.feed(PING) == []
    assert codec.buffered == len(PING)
    assert len(codec.feed(b"\n")) == 1


def test_over_long_line_raises_as_soon_as_the_cap_is_exceeded() -> None:
    codec = LineCodec(max_line=1024)
    codec.feed(b"x" * 1000)
    with pytest.raises(LineTooLongError, match="exceeds 1024 bytes"):
        codec.feed(b"x" * 25)  # no newline yet: must not wait for one
    assert codec.buffered == 0


def test_over_long_line_with_its_newline_in_the_same_chunk() -> None:
    with pytest.raises(LineTooLongError):
        LineCodec(max_line=16).feed(b"y" * 17 + b"\n" + PING + b"\n")


def test_poisoned_after_an_error() -> None:
    codec = LineCodec()
    with pytest.raises(ProtocolError):
        codec.feed(b"not json\n")
    with pytest.raises(ProtocolError, match="unusable after an earlier error"):
        codec.feed(PING + b"\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe{}\n", "not valid UTF-8"),
        (b'{"id":1,\n', "not valid JSON"),
        (b"[1,2,3]\n", "expected a JSON object"),
        (b"42\n", "expected a JSON object"),
        (b'"mining.notify"\n', "expected a JSON object"),
        (b'{"id":1,"method":5,"params":[]}\n', "method must be a string"),
        (b'{"id":1,"method":"mining.notify","params":{"a":1}}\n', "params must be a JSON array"),
        (b'{"id":1,"method":"mining.notify","params":"x"}\n', "mining.notify: params"),
        (b'{"id":true,"result":true}\n', "id must be"),
        (b'{"id":1.5,"result":true}\n', "id must be"),
        (b'{"id":[1],"result":true}\n', "id must be"),
        (b'{"id":1}\n', "neither method nor result/error"),
        (b"{}\n", "neither method nor result/error"),
        (b"[" * 5000 + b"\n", "not valid JSON"),
        (b"[" * 60000 + b"]" * 60000 + b"\n", "not valid JSON"),  # deeper than recursion allows
        (b'{"id":1,"result":' + b"9" * 5000 + b"}\n", "not valid JSON"),  # int digit limit
    ],
)
def test_malformed_lines_name_the_problem(data: bytes, expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected):
        LineCodec(max_line=200_000).feed(data)


def test_error_messages_truncate_the_offending_text() -> None:
    garbage = b"{" + b"z" * 10_000 + b"\n"
    with pytest.raises(ProtocolError) as caught:
        LineCodec().feed(garbage)
    assert len(str(caught.value)) < 400


def test_string_ids_and_nan_are_decoded() -> None:
    (message,) = LineCodec().feed(b'{"id":"abc","method":"mining.set_difficulty","params":[NaN]}\n')
    assert isinstance(message, Notification)
    assert message.id == "abc"


def test_encode_is_compact_json_with_one_newline() -> None:
    data = encode(Request(3, "mining.authorize", ["user", "pass"]))
    assert data == b'{"id":3,"method":"mining.authorize","params":["user","pass"]}\n'
    reply = encode(Response(9, None, StratumError(-32601, "Method not found: x")))
    assert json.loads(reply) == {
        "id": 9,
        "result": None,
        "error": [-32601, "Method not found: x", None],
    }


def test_encode_is_ascii_and_refuses_nan() -> None:
    assert encode(Request(1, "mining.subscribe", ["miner/ü"])).isascii()
    with pytest.raises(ValueError, match="JSON compliant"):
        encode(Request(1, "mining.suggest_difficulty", [float("nan")]))


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LineCodec(max_line=0)


def test_repr_shows_state() -> None:
    codec = LineCodec(max_line=100)
    codec.feed(b"abc")
    assert repr(codec) == "LineCodec(max_line=100, 3 bytes buffered)"
