"""Where a dotted config key was written: its line in the TOML text, for error messages.

:mod:`tomllib` returns plain dicts without positions, so this reads the text once more,
line by line, for table headers (``[api]``, ``[[pools]]``, counted per array) and
``key =`` lines. It is best effort by design: quoted keys and keys inside inline tables
are found through their nearest written parent, and a key that is absent points at its
table's header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["key_lines", "locate"]

_BARE = r"[A-Za-z0-9_-]+"
_DOTTED = rf"{_BARE}(?:\s*\.\s*{_BARE})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_KEY = re.compile(rf"\s*({_DOTTED})\s*=")
_PARENT = re.compile(r"(.*)(?:\[\d+\]|\.[^.\[]+)$")


def _dotted(raw: str) -> str:
    return ".".join(part.strip() for part in raw.split("."))


def key_lines(text: str) -> dict[str, int]:
    """Dotted key (``pools[1].url``, ``energy.ledger``) → 1-based line it is written on."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        odd_quotes = (line.count('"""') + line.count("'''")) % 2 == 1
        if in_string:  # inside a multi-line string: nothing here is a key
            in_string = not odd_quotes
            continue
        in_string = odd_quotes  # this line's key still counts
        if match := _ARRAY_HEADER.match(line):
            name = _dotted(match[1])
            counts[name] = counts.get(name, -1) + 1
            table = f"{name}[{counts[name]}]"
        elif match := _TABLE_HEADER.match(line):
            table = _in_array(_dotted(match[1]), counts)
        elif match := _KEY.match(line):
            key = _dotted(match[1])
            lines.setdefault(f"{table}.{key}" if table else key, number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def _in_array(table: str, counts: Mapping[str, int]) -> str:
    """``devices.options`` after ``[[devices]]`` belongs to the last ``devices`` entry."""
    head, _, rest = table.partition(".")
    return f"{head}[{counts[head]}].{rest}" if rest and head in counts else table


def locate(field: str, lines: Mapping[str, int]) -> int | None:
    """The line of ``field`` or, failing that, of its nearest parent that was written."""
    while field:
        if field in lines:
            return lines[field]
        parent = _PARENT.fullmatch(field)
        field = parent[1] if parent else ""
    return None
