"""Newline-delimited JSON-RPC framing, with memory bounded by a hard line cap.

:class:`LineCodec` turns received bytes into typed messages and never holds more than
``max_line`` bytes of an unfinished line, so a pool (or an attacker in the path) that
never sends a newline cannot make us buffer without limit.

After :class:`ProtocolError` (including :class:`LineTooLongError`) the codec is
*poisoned*: the byte stream can no longer be trusted to be in sync, so every later
:meth:`LineCodec.feed` raises again and the connection must be dropped. Messages that
preceded the bad line in the same chunk are discarded with it.
"""

from __future__ import annotations

import json

from stratum_client.errors import LineTooLongError, ProtocolError
from stratum_client.protocol.messages import Message, Request, Response, clip, parse_message

__all__ = ["DEFAULT_MAX_LINE", "LineCodec", "encode"]

DEFAULT_MAX_LINE = 64 * 1024
"""Bytes per line; a notify with a large coinbase and 16 branches is far below this."""


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
"""Built once: ``json.dumps`` with non-default options builds an encoder per call."""


def encode(message: Request | Response) -> bytes:
    """Compact JSON plus ``\\n``; ASCII-only so no pool chokes on our encoding."""
    return _ENCODER.encode(message.to_json()).encode("ascii") + b"\n"


def _decode_line(line: bytes) -> Message | None:
    """One line (without ``\\n``) to a message; None for a blank line."""
    stripped = line.strip()
    if not stripped:
        return None
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"line is not valid UTF-8 ({exc.reason}): {clip(repr(stripped))}"
        ) from exc
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProtocolError(f"line is not valid JSON ({exc}): {clip(text)}") from exc
    return parse_message(value)


class LineCodec:
    """Incremental decoder for one connection; create a fresh one per connection."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be positive, got {max_line}")
        self._max_line = max_line
        self._buffer = bytearray()
        self._poisoned: ProtocolError | None = None

    def __repr__(self) -> str:
        state = "poisoned" if self._poisoned else f"{len(self._buffer)} bytes buffered"
        return f"LineCodec(max_line={self._max_line}, {state})"

    @property
    def max_line(self) -> int:
        """The cap on one line, in bytes, excluding the ``\\n``."""
        return self._max_line

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held right now (never more than ``max_line``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Consume received bytes; return the messages of every line they complete.

        Raises :class:`LineTooLongError` as soon as a line exceeds the cap and
        :class:`ProtocolError` for a line that is not a JSON-RPC object; both poison
        the codec.
        """
        if self._poisoned is not None:
            raise ProtocolError(f"codec unusable after an earlier error: {self._poisoned}")
        try:
            return self._feed(data)
        except ProtocolError as exc:
            self._poisoned = exc
            self._buffer.clear()
            raise

    def _feed(self, data: bytes) -> list[Message]:
        if not self._buffer and data.endswith(b"\n") and data.find(b"\n") == len(data) - 1:
            # One whole line, as pools usually send it: no copy through the buffer.
            if len(data) - 1 > self._max_line:
                self._append(data, 0, len(data) - 1)  # raises LineTooLongError
            message = _decode_line(data[:-1])
            return [] if message is None else [message]
        messages: list[Message] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._append(data, start, end)
            line = bytes(self._buffer)
            self._buffer.clear()
            message = _decode_line(line)
            if message is not None:
                messages.append(message)
            start = end + 1
        self._append(data, start, len(data))
        return messages

    def _append(self, data: bytes, start: int, end: int) -> None:
        """Buffer ``data[start:end]``, refusing before the cap would be exceeded."""
        size = len(self._buffer) + end - start
        if size > self._max_line:
            raise LineTooLongError(
                f"line exceeds {self._max_line} bytes without a newline "
                f"(starts {clip(repr(bytes(self._buffer[:40]) or data[start : start + 40]))})"
            )
        self._buffer += data[start:end]
