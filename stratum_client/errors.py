"""The exception tree of stratum-client.

Every error the project raises on purpose derives from :class:`StratumClientError`, so
an I/O shell can catch exactly "our" failures and let programming errors surface::

    StratumClientError
    ├── InputError (ValueError)        bad user or file input; names the field
    │   └── ConfigError                the config file; names key, value and expectation
    ├── ProtocolError                  the pool broke the Stratum wire protocol
    │   └── LineTooLongError           a line exceeded the codec's hard cap
    ├── PoolError                      the pool answered a request with an error
    │   └── ShareRejectedError         ... to mining.submit (carries the reject code)
    ├── WorkError                      a job cannot be turned into work
    ├── DriverError                    anything between us and the chips
    │   ├── DriverNotFoundError        no driver of that name is installed
    │   ├── DriverImportError          the driver exists but failed to import
    │   ├── FrameError                 a chip frame failed to decode (CRC, length)
    │   ├── ChipCountError             the chain has a different number of chips
    │   ├── SerialLinkLostError        the serial device vanished
    │   └── DriverTimeoutError (TimeoutError)
    └── LedgerError                    the energy ledger cannot be read or written
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ChipCountError",
    "ConfigError",
    "DriverError",
    "DriverImportError",
    "DriverNotFoundError",
    "DriverTimeoutError",
    "FrameError",
    "InputError",
    "LedgerError",
    "LineTooLongError",
    "PoolError",
    "ProtocolError",
    "SerialLinkLostError",
    "ShareRejectedError",
    "StratumClientError",
    "WorkError",
]


class StratumClientError(Exception):
    """Root of every error this project raises deliberately."""


class InputError(StratumClientError, ValueError):
    """Input from a user, a file or a message failed validation.

    ``field`` names what was wrong so the message can point at it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ConfigError(InputError):
    """The configuration file is invalid (the field is the dotted key).

    One read reports every problem it finds: ``errors`` lists them in the order found
    (just this error when it stands alone); ``field`` and ``problem`` are the first one's.
    ``line`` is where the key (or its table) was written, when the text is known.
    """

    line: int | None = None

    def __init__(self, field: str, problem: str, errors: Sequence[ConfigError] = ()) -> None:
        super().__init__(field, problem)
        self.errors: tuple[ConfigError, ...] = tuple(errors) or (self,)

    def __str__(self) -> str:
        if len(self.errors) > 1:
            return f"{len(self.errors)} problems:" + "".join(f"\n  {e}" for e in self.errors)
        return f"{self.field}: {self.problem}" + (f" (line {self.line})" if self.line else "")

    @classmethod
    def of(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error standing for all of ``errors`` (the error itself when there is one)."""
        return errors[0] if len(errors) == 1 else cls(errors[0].field, errors[0].problem, errors)


class ProtocolError(StratumClientError):
    """The pool sent something that is not valid Stratum v1; the connection must drop."""


class LineTooLongError(ProtocolError):
    """A line exceeded the codec's cap, so memory stays bounded."""


class PoolError(StratumClientError):
    """The pool answered a request with a JSON-RPC error."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message if code is None else f"{message} (code {code})")
        self.code = code
        self.reason = message


class ShareRejectedError(PoolError):
    """The pool rejected a submitted share."""


class WorkError(StratumClientError):
    """A job cannot be turned into work (inconsistent sizes, bad fields)."""


class DriverError(StratumClientError):
    """A chip driver failed."""


class DriverNotFoundError(DriverError):
    """No installed driver carries the requested name."""

    def __init__(self, name: str, installed: list[str]) -> None:
        listing = ", ".join(sorted(installed)) or "none"
        super().__init__(f"no driver named {name!r} is installed (installed: {listing})")
        self.name = name
        self.installed = sorted(installed)


class DriverImportError(DriverError):
    """A driver is registered but its module could not be imported."""


class FrameError(DriverError):
    """A frame from or to a chip is malformed (bad CRC, length or preamble)."""


class ChipCountError(DriverError):
    """The chain answered with a different number of chips than configured."""

    def __init__(self, expected: int, found: int, port: str) -> None:
        super().__init__(f"{port}: expected {expected} chip(s), found {found}")
        self.expected = expected
        self.found = found
        self.port = port


class SerialLinkLostError(DriverError):
    """The serial device disappeared (unplugged, reset)."""


class DriverTimeoutError(DriverError, TimeoutError):
    """A chip did not answer in time."""


class LedgerError(StratumClientError):
    """The energy ledger could not be read or written."""
