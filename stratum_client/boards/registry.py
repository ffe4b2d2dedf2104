"""Find boards by name: every board is an entry point, imported only when chosen.

Built-in and third-party boards register the same way, as entry points in the
``stratum_client.boards`` group whose value is ``"module:Class"``. Listing reads package
metadata only, so a broken board package never breaks the listing or any other board.
Names are matched case-insensitively; a built-in (this project's distribution) wins over
a third party claiming its name, and two third parties claiming one name make it
unloadable until one is uninstalled. :func:`register_board` injects a class in-process.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points

import structlog

from .base import Board
from .errors import BoardError, BoardImportError, BoardNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_boards",
    "load_board",
    "register_board",
    "unregister_board",
]

ENTRY_POINT_GROUP = "stratum_client.boards"
_BUILTIN_DISTRIBUTIONS = frozenset({"stratum-client"})

_log = structlog.get_logger(__name__)
_injected: dict[str, type[Board]] = {}


def _is_builtin(ep: EntryPoint) -> bool:
    name = ep.dist.name if ep.dist is not None else ""
    return re.sub(r"[-_.]+", "-", name).lower() in _BUILTIN_DISTRIBUTIONS


def _scan() -> dict[str, list[EntryPoint]]:
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        candidates = by_name.setdefault(ep.name.lower(), [])
        if all(ep.value != known.value for known in candidates):
            candidates.append(ep)
    return by_name


def _owner(name: str, candidates: list[EntryPoint]) -> EntryPoint:
    if len(candidates) == 1:
        return candidates[0]
    builtin = next((ep for ep in candidates if _is_builtin(ep)), None)
    if builtin is None:
        targets = ", ".join(ep.value for ep in candidates)
        raise BoardError(f"board {name!r} is claimed by several packages: {targets}")
    _log.warning("entry point shadows a built-in board, ignored", board=name,
                 kept=builtin.value)  # fmt: skip
    return builtin


def available_boards() -> dict[str, str]:
    """Installed boards as ``name → "module:Class"``, sorted; imports nothing."""
    found: dict[str, str] = {}
    for name, candidates in _scan().items():
        try:
            found[name] = _owner(name, candidates).value
        except BoardError:
            continue
    found.update({n: f"{c.__module__}:{c.__qualname__}" for n, c in _injected.items()})
    return dict(sorted(found.items()))


def load_board(name: str) -> type[Board]:
    """The board class called ``name``; :class:`BoardNotFoundError` lists what exists."""
    key = name.lower()
    if key in _injected:
        return _injected[key]
    candidates = _scan().get(key)
    if not candidates:
        raise BoardNotFoundError(name, sorted(available_boards()))
    ep = _owner(key, candidates)
    try:
        obj = ep.load()
    except Exception as exc:
        raise BoardImportError(f"board {name!r} ({ep.value}) failed to import: {exc}") from exc
    if isinstance(obj, type) and issubclass(obj, Board):
        return obj
    raise BoardImportError(f"board {name!r} ({ep.value}) is not a Board subclass: {obj!r}")


def register_board(cls: type[Board], *, replace: bool = False) -> None:
    """Make ``cls`` loadable under ``cls.name`` in this process (tests, embedding)."""
    key = cls.name.lower()
    if not replace and (key in _injected or key in _scan()):
        raise BoardError(f"board name {cls.name!r} is taken; pass replace=True")
    _injected[key] = cls


def unregister_board(name: str) -> None:
    _injected.pop(name.lower(), None)
