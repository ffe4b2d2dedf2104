"""Pseudo-terminals that stand in for a USB-UART in tests and for the chip emulator.

The emulator owns the master side; the driver opens the slave, usually through a stable
symlink such as ``/tmp/asic0``, with :class:`~stratum_client.asic.transport.SerialLink`,
exactly as it would open ``/dev/ttyUSB0``. POSIX only.

Linux pty behaviour this relies on:

* Closing the master hangs the slave up. From then on a read on the slave returns end of
  file (the fd polls readable but yields 0 bytes; older kernels, or the master side, report
  ``EIO`` instead) and a write fails with ``EIO``. That is what a USB unplug looks like, and
  ``SerialLink`` turns both into ``SerialLinkLostError``.
* While no process holds the slave open, reads on the master fail with ``EIO``.
  :class:`PtyPair` therefore keeps its own slave descriptor open, so the emulator sees a
  quiet line, not an error, before the driver opens the port.
* Baud rates set on the slave are stored and reported by ``termios.tcgetattr`` but do not
  affect the transfer speed, so baud switches can be checked without timing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import tty
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["HotplugPty", "PtyPair", "point_symlink"]


def point_symlink(link: Path, target: str) -> None:
    """Make ``link`` point at ``target`` atomically, so an opener never sees it missing."""
    staging = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    staging.symlink_to(target)
    staging.replace(link)


class PtyPair:
    """One pseudo-terminal: a raw, non-echoing slave and the master that drives it."""

    def __init__(self, master_fd: int, slave_fd: int, link: Path | None) -> None:
        self.master_fd = master_fd
        self.slave_fd = slave_fd
        self.slave_name = os.ttyname(slave_fd)
        self.link = link
        self.closed = False

    @classmethod
    def open(cls, link: str | os.PathLike[str] | None = None) -> Self:
        """Create a pty in raw mode, optionally with a symlink at ``link`` to its slave."""
        master_fd, slave_fd = os.openpty()
        try:
            # Raw before anyone writes: no echo, no line discipline, no CR/LF mangling.
            tty.setraw(slave_fd)
            pair = cls(master_fd, slave_fd, None if link is None else Path(link))
            if pair.link is not None:
                point_symlink(pair.link, pair.slave_name)
        except BaseException:
            os.close(master_fd)
            os.close(slave_fd)
            raise
        return pair

    @property
    def path(self) -> str:
        """What a driver opens: the symlink if there is one, else the slave device."""
        return str(self.link) if self.link is not None else self.slave_name

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the master, i.e. towards the driver."""
        view = memoryview(data)
        while view:
            written = os.write(self.master_fd, view)
            view = view[written:]

    def read(self, max_bytes: int = 4096, timeout: float = 1.0) -> bytes:
        """Read what the driver sent, waiting up to ``timeout``; ``b""`` on timeout.

        Blocking: call it through ``asyncio.to_thread`` from async code.
        """
        ready, _, _ = select.select([self.master_fd], [], [], timeout)
        if not ready:
            return b""
        return os.read(self.master_fd, max_bytes)

    def close_master(self) -> None:
        """Close only the master: the slave is hung up, as if the cable were pulled."""
        if self.master_fd >= 0:
            os.close(self.master_fd)
            self.master_fd = -1

    def close(self) -> None:
        """Close both ends and remove the symlink if it still points at this pty."""
        if self.closed:
            return
        self.closed = True
        self.close_master()
        os.close(self.slave_fd)
        if self.link is not None:
            self._unlink_if_mine(self.link)

    def _unlink_if_mine(self, link: Path) -> None:
        # A newer pty may have been plugged in at the same path already.
        try:
            if os.readlink(link) == self.slave_name:
                link.unlink()
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EINVAL):
                raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HotplugPty:
    """A pty at a fixed symlink path that can be unplugged and plugged back in.

    Each :meth:`plug` creates a fresh pty (a new ``/dev/pts/N``), just as a USB-UART comes
    back as a new device instance, and re-points the symlink at it.
    """

    def __init__(self, link: str | os.PathLike[str]) -> None:
        self.link = Path(link)
        self._pair: PtyPair | None = None

    @property
    def path(self) -> str:
        """The stable path a driver opens."""
        return str(self.link)

    @property
    def plugged(self) -> bool:
        """Whether a pty is currently behind the symlink."""
        return self._pair is not None

    @property
    def pair(self) -> PtyPair:
        """The current pty; raises ``RuntimeError`` while unplugged."""
        if self._pair is None:
            raise RuntimeError(f"{self.link}: unplugged")
        return self._pair

    def plug(self) -> PtyPair:
        """Create a new pty behind the symlink (a no-op while plugged)."""
        if self._pair is None:
            self._pair = PtyPair.open(self.link)
        return self._pair

    def unplug(self) -> None:
        """Close the master and remove the symlink, as a USB unplug would."""
        if self._pair is not None:
            self._pair.close()
            self._pair = None

    def close(self) -> None:
        """Unplug for good."""
        self.unplug()

    def __enter__(self) -> Self:
        self.plug()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
