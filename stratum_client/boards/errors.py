"""The board layer's errors; each derives from the project's error tree.

::

    StratumClientError
    └── BoardError                     anything between us and a board's control side
        ├── BoardNotFoundError         no board of that name is installed
        ├── BoardImportError           the board exists but failed to import
        ├── BoardLimitError (InputError) a setting outside the board's limits
        ├── ControlLinkError           the control channel failed (lost, timed out)
        │   ├── ControlTimeoutError    no reply in time
        │   └── NotBitaxeRawError      the port does not speak bitaxe-raw
        ├── ControlReplyError          the bridge answered a request with an error code
        │   └── I2cNackError           an I2C device did not acknowledge
        ├── PeripheralError            a device answered with something impossible
        └── SafeStateError             at least one safe-state step failed
"""

from __future__ import annotations

from stratum_client.errors import InputError, StratumClientError

__all__ = [
    "BoardError",
    "BoardImportError",
    "BoardLimitError",
    "BoardNotFoundError",
    "ControlLinkError",
    "ControlReplyError",
    "ControlTimeoutError",
    "I2cNackError",
    "NotBitaxeRawError",
    "PeripheralError",
    "SafeStateError",
]


class BoardError(StratumClientError):
    """A board's control side failed."""


class BoardNotFoundError(BoardError):
    """No installed board carries the requested name."""

    def __init__(self, name: str, installed: list[str]) -> None:
        listing = ", ".join(sorted(installed)) or "none"
        super().__init__(f"no board named {name!r} is installed (installed: {listing})")
        self.name = name
        self.installed = sorted(installed)


class BoardImportError(BoardError):
    """A board is registered but its module could not be imported."""


class BoardLimitError(BoardError, InputError):
    """A fan, voltage or frequency setting lies outside what the board allows."""

    def __init__(self, board: str, setting: str, value: float, low: float, high: float) -> None:
        InputError.__init__(
            self,
            setting,
            f"{value:g} is outside {board}'s limits {low:g}..{high:g}",
        )
        self.board = board
        self.setting = setting
        self.value = value
        self.low = low
        self.high = high


class ControlLinkError(BoardError):
    """The control channel is gone or misbehaving (unplugged, wrong device, timeout)."""


class ControlTimeoutError(ControlLinkError, TimeoutError):
    """The control channel did not answer a request in time."""


class NotBitaxeRawError(ControlLinkError):
    """The port answered, or stayed silent, in a way no bitaxe-raw bridge does."""


class ControlReplyError(BoardError):
    """The bridge answered a request with an error code (and maybe a message)."""

    def __init__(self, code: int, message: str, request: str) -> None:
        detail = f": {message}" if message else ""
        super().__init__(f"{request}: bridge error 0x{code:02X}{detail}")
        self.code = code
        self.message = message


class I2cNackError(ControlReplyError):
    """An I2C device did not acknowledge (the bridge's I2C error)."""


class PeripheralError(BoardError):
    """A peripheral answered with a value that cannot be right (fault code, bad ID)."""


class SafeStateError(BoardError):
    """One or more safe-state steps failed; the ones that could were still carried out."""

    def __init__(self, board: str, failures: list[str]) -> None:
        super().__init__(f"{board}: safe state incomplete: {'; '.join(failures)}")
        self.failures = failures
