"""The bitaxe-raw control protocol: request frames, V0/V1 replies, errors, page commands.

A request is ``LEN_LO LEN_HI ID BUS PAGE CMD DATA…`` where LEN counts the whole frame.
Replies come in two framings:

* **V0** (the original bridge firmware): ``LEN ID DATA…`` with LEN = data bytes only.
  Its *error* writer, however, puts the whole-frame length in LEN (``04 00 ID 11``,
  ``17 00 ID FF "I2C WriteRead Error"``), so a V0 reader that trusts LEN would wait for
  bytes that never come. :func:`split_reply` therefore knows how many data bytes the
  request expects and reads any other LEN as a whole-frame error; when the expected
  length and an error's length coincide, :func:`pending_error` settles it after the
  reply timeout.
* **V1** (the successor firmware): ``LEN ID STATUS DATA…`` with LEN the whole frame and
  STATUS 0 for success.

IDs are echoed; a request the bridge cannot parse is answered with ID 0xFF, so hosts
never use 0xFF themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from construct import Bytes, Int8ul, Int16ul, Rebuild, Struct, len_, this

__all__ = [
    "ADC_COMMANDS",
    "ERROR_CODES",
    "MAX_REQUEST_ID",
    "MIN_REQUEST_LENGTH",
    "PARSE_ERROR_ID",
    "AdcCommand",
    "ErrorCode",
    "ErrorReply",
    "Framing",
    "FramingError",
    "I2cCommand",
    "Page",
    "Reply",
    "Request",
    "adc_read",
    "decode_request",
    "encode_error",
    "encode_reply",
    "encode_request",
    "gpio_get",
    "gpio_set",
    "i2c_read",
    "i2c_set_frequency",
    "i2c_write",
    "i2c_write_read",
    "pending_error",
    "split_reply",
]

MIN_REQUEST_LENGTH = 6
PARSE_ERROR_ID = 0xFF
"""The ID a bridge answers an unparsable request with."""
MAX_REQUEST_ID = 0xFE


class Page(enum.IntEnum):
    """Request pages (the peripheral a command goes to)."""

    I2C = 0x05
    GPIO = 0x06
    ADC = 0x07
    LED = 0x08
    SYSTEM = 0x09


class I2cCommand(enum.IntEnum):
    SET_FREQUENCY = 0x10
    WRITE = 0x20
    READ = 0x30
    WRITE_READ = 0x40


class AdcCommand(enum.IntEnum):
    VDD = 0x50
    VIN = 0x51


ADC_COMMANDS = frozenset(AdcCommand)


class ErrorCode(enum.IntEnum):
    """Error codes every firmware variant shares (0x12 is buffer overflow in V0/V1)."""

    TIMEOUT = 0x10
    INVALID_COMMAND = 0x11
    BUFFER_OVERFLOW = 0x12
    ERROR = 0xFF
    """Carries an ASCII message, e.g. ``I2C WriteRead Error`` for a NACK."""


ERROR_CODES = frozenset(int(c) for c in ErrorCode)


class Framing(enum.StrEnum):
    """Which reply framing the bridge firmware uses."""

    V0 = "v0"
    V1 = "v1"


class FramingError(ValueError):
    """Bytes that no bridge would send in reply (wrong length field, bad status)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One control request; ``data`` follows the page and command bytes."""

    id: int
    page: int
    command: int
    data: bytes = b""
    bus: int = 0

    def describe(self) -> str:
        """A short name for logs and errors: ``I2C WRITE_READ 24 8B 02``."""
        page = _name(Page, self.page)
        command = _command_name(self.page, self.command)
        shown = self.data.hex(" ").upper()
        return f"{page} {command} {shown}".rstrip()


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful reply: the echoed ID and the data."""

    id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error reply: the echoed ID, the code and its message (ASCII, may be empty)."""

    id: int
    code: int
    message: str


_REQUEST = Struct(
    "length" / Rebuild(Int16ul, len_(this.data) + MIN_REQUEST_LENGTH),
    "id" / Int8ul,
    "bus" / Int8ul,
    "page" / Int8ul,
    "command" / Int8ul,
    "data" / Bytes(this.length - MIN_REQUEST_LENGTH),
)
_V0_REPLY = Struct(
    "length" / Rebuild(Int16ul, len_(this.data)),
    "id" / Int8ul,
    "data" / Bytes(this.length),
)
_V0_ERROR = Struct(
    "length" / Rebuild(Int16ul, len_(this.message) + 4),
    "id" / Int8ul,
    "code" / Int8ul,
    "message" / Bytes(this.length - 4),
)
_V1_REPLY = Struct(
    "length" / Rebuild(Int16ul, len_(this.data) + 4),
    "id" / Int8ul,
    "status" / Int8ul,
    "data" / Bytes(this.length - 4),
)


def _name(kind: type[enum.IntEnum], value: int) -> str:
    try:
        return kind(value).name
    except ValueError:
        return f"0x{value:02X}"


def _command_name(page: int, command: int) -> str:
    if page == Page.I2C:
        return _name(I2cCommand, command)
    if page == Page.ADC:
        return _name(AdcCommand, command)
    if page == Page.GPIO:
        return f"PIN{command}"
    return f"0x{command:02X}"


# -- requests ---------------------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    """The request frame; raises ValueError for fields that do not fit a byte."""
    for field in ("id", "bus", "page", "command"):
        value = getattr(request, field)
        if not 0 <= value <= 0xFF:
            raise ValueError(f"request {field} {value} does not fit in a byte")
    if len(request.data) > 0xFFFF - MIN_REQUEST_LENGTH:
        raise ValueError(f"request data of {len(request.data)} bytes is too long")
    return bytes(
        _REQUEST.build(
            {
                "id": request.id,
                "bus": request.bus,
                "page": request.page,
                "command": request.command,
                "data": request.data,
            }
        )
    )


def decode_request(frame: bytes) -> Request:
    """Parse one complete request frame (the bridge side); ValueError if malformed."""
    if len(frame) < MIN_REQUEST_LENGTH:
        raise FramingError(f"request of {len(frame)} bytes is shorter than {MIN_REQUEST_LENGTH}")
    length = int.from_bytes(frame[:2], "little")
    if length != len(frame):
        raise FramingError(f"request length field {length} but {len(frame)} bytes")
    parsed = _REQUEST.parse(frame)
    return Request(parsed.id, parsed.page, parsed.command, bytes(parsed.data), parsed.bus)


def i2c_set_frequency(request_id: int, hz: int) -> tuple[Request, int]:
    """Set the bus clock; the reply echoes the 4 bytes. Returns (request, reply length)."""
    return Request(request_id, Page.I2C, I2cCommand.SET_FREQUENCY, hz.to_bytes(4, "little")), 4


def i2c_write(request_id: int, address: int, data: bytes) -> tuple[Request, int]:
    """Write ``data`` to ``address``; the reply is 1 byte."""
    return Request(request_id, Page.I2C, I2cCommand.WRITE, bytes([address]) + data), 1


def i2c_read(request_id: int, address: int, count: int) -> tuple[Request, int]:
    """Read ``count`` bytes from ``address``."""
    return Request(request_id, Page.I2C, I2cCommand.READ, bytes([address, count])), count


def i2c_write_read(request_id: int, address: int, data: bytes, count: int) -> tuple[Request, int]:
    """Write ``data`` then read ``count`` bytes with a repeated start (register reads)."""
    payload = bytes([address]) + data + bytes([count])
    return Request(request_id, Page.I2C, I2cCommand.WRITE_READ, payload), count


def gpio_set(request_id: int, pin: int, level: bool) -> tuple[Request, int]:
    """Drive GPIO ``pin``; the reply echoes the level."""
    return Request(request_id, Page.GPIO, pin, bytes([int(level)])), 1


def gpio_get(request_id: int, pin: int) -> tuple[Request, int]:
    """Read GPIO ``pin``'s level."""
    return Request(request_id, Page.GPIO, pin), 1


def adc_read(request_id: int, channel: AdcCommand) -> tuple[Request, int]:
    """Read an ADC channel: a little-endian u16 raw count."""
    return Request(request_id, Page.ADC, channel), 2


# -- replies ----------------------------------------------------------------------------


def encode_reply(request_id: int, data: bytes, framing: Framing) -> bytes:
    """A success reply as the bridge sends it."""
    if framing is Framing.V0:
        return bytes(_V0_REPLY.build({"id": request_id, "data": data}))
    return bytes(_V1_REPLY.build({"id": request_id, "status": 0, "data": data}))


def encode_error(request_id: int, code: int, message: str, framing: Framing) -> bytes:
    """An error reply as the bridge sends it (V0 with its whole-frame length quirk)."""
    text = message.encode("ascii")
    if framing is Framing.V0:
        return bytes(_V0_ERROR.build({"id": request_id, "code": code, "message": text}))
    return bytes(_V1_REPLY.build({"id": request_id, "status": code, "data": text}))


def _v0_error(frame: bytes) -> ErrorReply:
    parsed = _V0_ERROR.parse(frame)
    return ErrorReply(parsed.id, parsed.code, bytes(parsed.message).decode("ascii", "replace"))


def _split_v0(buffer: bytes, expected: int | None) -> tuple[Reply | ErrorReply, int] | None:
    length = int.from_bytes(buffer[:2], "little")
    error_shaped = length >= 4 and buffer[3:4] != b"" and buffer[3] in ERROR_CODES
    if expected is None or length == expected:
        if len(buffer) < length + 3:
            return None
        parsed = _V0_REPLY.parse(buffer[: length + 3])
        return Reply(parsed.id, bytes(parsed.data)), length + 3
    if len(buffer) < 4:
        return None
    if not error_shaped:
        raise FramingError(
            f"reply length {length} is neither the expected {expected} data bytes nor an error"
        )
    if len(buffer) < length:
        return None
    return _v0_error(buffer[:length]), length


def _split_v1(buffer: bytes) -> tuple[Reply | ErrorReply, int] | None:
    if len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[:2], "little")
    if length < 4:
        raise FramingError(f"V1 reply length {length} is shorter than its 4-byte header")
    if len(buffer) < length:
        return None
    parsed = _V1_REPLY.parse(buffer[:length])
    data = bytes(parsed.data)
    if parsed.status == 0:
        return Reply(parsed.id, data), length
    return ErrorReply(parsed.id, parsed.status, data.decode("ascii", "replace")), length


def split_reply(
    buffer: bytes, framing: Framing, expected: int | None
) -> tuple[Reply | ErrorReply, int] | None:
    """The first reply in ``buffer`` and the bytes it used, or None if incomplete.

    ``expected`` is the number of data bytes the request's success reply carries
    (None: trust LEN). Raises :class:`FramingError` on bytes no bridge sends.
    """
    if len(buffer) < 3:
        return None
    if framing is Framing.V0:
        return _split_v0(buffer, expected)
    return _split_v1(buffer)


def pending_error(buffer: bytes, framing: Framing) -> ErrorReply | None:
    """After a reply timeout: the buffered bytes read as one whole-frame V0 error, if so.

    Settles the one V0 ambiguity: an error whose whole-frame length equals the number of
    data bytes the request expected (``04 00 ID 11`` after a 4-byte request).
    """
    if framing is not Framing.V0 or len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[:2], "little")
    if length == len(buffer) and buffer[3] in ERROR_CODES:
        return _v0_error(buffer)
    return None
