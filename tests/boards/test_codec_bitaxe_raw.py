"""bitaxe-raw control frames against the worked frames of the board fact sheet (§1.5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratum_client.boards.codecs import bitaxe_raw as raw
from stratum_client.boards.codecs.bitaxe_raw import ErrorReply, Framing, Reply

H = bytes.fromhex

# (builder output, request hex, V0 reply hex, reply data hex)
WORKED = [
    (raw.i2c_set_frequency(0, 100_000), "0A 00 00 00 05 10 A0 86 01 00", "04 00 00 A0 86 01 00",
     "A0 86 01 00"),
    (raw.i2c_write_read(1, 0x24, b"\xad", 7), "09 00 01 00 05 40 24 AD 07",
     "07 00 01 06 54 49 54 6D 24 41", "06 54 49 54 6D 24 41"),
    (raw.i2c_write(2, 0x24, H("01 00")), "09 00 02 00 05 20 24 01 00", "01 00 02 02", "02"),
    (raw.i2c_write(3, 0x24, H("21 4D 02")), "0A 00 03 00 05 20 24 21 4D 02", "01 00 03 03", "03"),
    (raw.i2c_write(4, 0x24, H("01 80")), "09 00 04 00 05 20 24 01 80", "01 00 04 02", "02"),
    (raw.i2c_write_read(5, 0x24, b"\x8b", 2), "09 00 05 00 05 40 24 8B 02", "02 00 05 4D 02",
     "4D 02"),
    (raw.i2c_write_read(6, 0x24, b"\x79", 2), "09 00 06 00 05 40 24 79 02", "02 00 06 00 00",
     "00 00"),
    (raw.i2c_write(7, 0x4C, H("4C 3F")), "09 00 07 00 05 20 4C 4C 3F", "01 00 07 02", "02"),
    (raw.i2c_write_read(8, 0x4C, b"\x01", 1), "09 00 08 00 05 40 4C 01 01", "01 00 08 3C", "3C"),
    (raw.gpio_set(9, 0, False), "07 00 09 00 06 00 00", "01 00 09 00", "00"),
    (raw.gpio_set(10, 0, True), "07 00 0A 00 06 00 01", "01 00 0A 01", "01"),
    (raw.gpio_get(11, 0), "06 00 0B 00 06 00", "01 00 0B 01", "01"),
    (raw.adc_read(12, raw.AdcCommand.VDD), "06 00 0C 00 07 50", "02 00 0C 34 12", "34 12"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "request_hex", "reply_hex", "data_hex"), WORKED)
def test_worked_frames(
    build: tuple[raw.Request, int], request_hex: str, reply_hex: str, data_hex: str
) -> None:
    request, expected = build
    assert raw.encode_request(request) == H(request_hex)
    assert raw.decode_request(H(request_hex)) == request
    reply = H(reply_hex)
    decoded = raw.split_reply(reply, Framing.V0, expected)
    assert decoded == (Reply(request.id, H(data_hex)), len(reply))
    assert raw.encode_reply(request.id, H(data_hex), Framing.V0) == reply


def test_v1_read_vout_reply_and_invalid_command() -> None:
    assert raw.encode_reply(5, H("4D 02"), Framing.V1) == H("06 00 05 00 4D 02")
    assert raw.split_reply(H("06 00 05 00 4D 02"), Framing.V1, 2) == (Reply(5, H("4D 02")), 6)
    assert raw.split_reply(H("04 00 07 11"), Framing.V1, 2) == (ErrorReply(7, 0x11, ""), 4)


def test_v0_errors_use_the_whole_frame_length() -> None:
    """The V0 error writer's quirk: LEN counts the whole frame, not the data."""
    invalid = raw.encode_error(3, raw.ErrorCode.INVALID_COMMAND, "", Framing.V0)
    assert invalid == H("04 00 03 11")
    nack = raw.encode_error(9, raw.ErrorCode.ERROR, "I2C WriteRead Error", Framing.V0)
    assert nack[:4] == H("17 00 09 FF")
    assert nack[4:] == b"I2C WriteRead Error"
    # A reader expecting 2 data bytes recognises both as complete errors.
    assert raw.split_reply(invalid, Framing.V0, 2) == (ErrorReply(3, 0x11, ""), 4)
    assert raw.split_reply(nack, Framing.V0, 2) == (
        ErrorReply(9, 0xFF, "I2C WriteRead Error"),
        len(nack),
    )


def test_v0_error_as_long_as_the_expected_reply_is_settled_after_the_timeout() -> None:
    invalid = H("04 00 03 11")
    assert raw.split_reply(invalid, Framing.V0, 4) is None  # could be a 4-byte reply
    assert raw.pending_error(invalid, Framing.V0) == ErrorReply(3, 0x11, "")
    assert raw.pending_error(H("04 00 03 A0 86"), Framing.V0) is None


def test_incomplete_and_garbage_replies() -> None:
    assert raw.split_reply(H("02 00"), Framing.V0, 2) is None
    assert raw.split_reply(H("02 00 05 4D"), Framing.V0, 2) is None
    with pytest.raises(raw.FramingError, match="neither the expected 2"):
        raw.split_reply(H("09 00 05 4D 02 00"), Framing.V0, 2)
    with pytest.raises(raw.FramingError, match="shorter than its 4-byte header"):
        raw.split_reply(H("02 00 05 00"), Framing.V1, 2)


def test_malformed_requests_are_refused() -> None:
    with pytest.raises(raw.FramingError, match="shorter"):
        raw.decode_request(H("05 00 00 00 05"))
    with pytest.raises(raw.FramingError, match="length field 9"):
        raw.decode_request(H("09 00 00 00 05 20 24"))
    with pytest.raises(ValueError, match="id 300"):
        raw.encode_request(raw.Request(300, raw.Page.I2C, raw.I2cCommand.WRITE))


@given(
    request_id=st.integers(0, 0xFE),
    data=st.binary(max_size=40),
    framing=st.sampled_from(list(Framing)),
    split=st.integers(0, 50),
)
def test_replies_round_trip_in_any_split(
    request_id: int, data: bytes, framing: Framing, split: int
) -> None:
    frame = raw.encode_reply(request_id, data, framing) + b"\x01\x00\x07"
    head = frame[: min(split, len(frame) - 3)]
    if len(head) < len(frame) - 3:
        assert raw.split_reply(head, framing, len(data)) is None
    assert raw.split_reply(frame, framing, len(data)) == (
        Reply(request_id, data),
        len(frame) - 3,
    )
