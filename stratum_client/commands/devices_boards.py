"""The USB boards part of ``stratum-client devices``: which board each USB device is, and
the ``[[devices]]`` table to paste for it.

Works on udev property dicts (:func:`~stratum_client.boards.discovery.list_usb_ttys` on a
live machine, recorded ones in tests), through the same matcher the boards declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stratum_client.boards.discovery import (
    devices_snippet,
    group_ports,
    list_usb_ttys,
    match_port,
    usb_matches,
)
from stratum_client.boards.errors import BoardError

__all__ = ["boards_text", "local_boards_text"]


def boards_text(ttys: Iterable[Mapping[str, str]]) -> str:
    """What ``devices`` prints about the boards among ``ttys`` (udev properties)."""
    rules, roles = usb_matches()
    matches = [m for props in ttys if (m := match_port(props, rules)) is not None]
    found = group_ports(matches, roles)
    if not found:
        return "no USB mining boards found"
    parts = []
    for board in found:
        ports = ", ".join(f"{role} {path}" for role, path in board.ports.items())
        head = f"# {' or '.join(board.boards)}, serial {board.serial or '?'}: {ports}"
        if board.problem:
            head += f"\n# not usable as found: {board.problem}"
        parts.append(f"{head}\n{devices_snippet(board)}")
    return "USB mining boards (paste a table into the config):\n\n" + "\n".join(parts)


def local_boards_text() -> str:
    """:func:`boards_text` for this machine's USB ttys."""
    try:
        ttys = list_usb_ttys()
    except BoardError as exc:
        return f"USB boards not listed: {exc}"
    return boards_text(ttys)
