"""Reading and setting a Linux terminal's speed, custom rates included (``termios2``)."""

from __future__ import annotations

import fcntl
import struct
import termios

__all__ = ["set_terminal_speed", "terminal_speed"]

_TCGETS2, _TCSETS2 = 0x802C542A, 0x402C542B
"""Linux ``struct termios2`` ioctls: the only way to set a rate without a ``B`` constant."""
_TERMIOS2 = struct.Struct("=4IB19s2I")
_CBAUD, _BOTHER, _IBSHIFT = 0o010017, 0o010000, 16


def set_terminal_speed(fd: int, baud: int) -> None:
    """Set a terminal's input and output speed to ``baud`` (any rate on Linux).

    Standard rates go through :mod:`termios`; others (3.125 Mbaud, 115 741) through the
    ``termios2`` ioctl. Raises OSError or ``termios.error`` if the terminal refuses.
    """
    code = getattr(termios, f"B{baud}", None)
    if code is not None:
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = code
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        return
    fields = list(_TERMIOS2.unpack(fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size))))
    cflag = fields[2] & ~(_CBAUD | _CBAUD << _IBSHIFT)
    fields[2] = cflag | _BOTHER | _BOTHER << _IBSHIFT
    fields[6] = fields[7] = baud
    fcntl.ioctl(fd, _TCSETS2, _TERMIOS2.pack(*fields))


def terminal_speed(fd: int) -> int:
    """A terminal's output speed in baud (Linux ``termios2``, so custom rates show too)."""
    return int(_TERMIOS2.unpack(fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size)))[7])
