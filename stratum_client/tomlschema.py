"""Reading TOML tables with errors that name the dotted key, the value and what was expected.

The config file and its ``[energy]`` section are validated with the same few tools: a
:class:`Table` that refuses unknown keys (suggesting the closest known one) and small
converters that each check one kind of value. Problems are collected, not raised one by
one (:class:`Problems`), so a file with three mistakes is reported with all three.
Values are shown as the user wrote them, shortened, with any URL credentials masked, so
an error message never leaks a secret.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast

from stratum_client.errors import ConfigError

__all__ = [
    "MISSING",
    "Convert",
    "Problems",
    "Table",
    "TableContext",
    "absolute_path",
    "bad",
    "boolean",
    "choice",
    "file_in",
    "free_table",
    "freeze",
    "integer",
    "mask_userinfo",
    "matching",
    "number",
    "show",
    "string",
    "text",
    "unknown_key",
]


def mask_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


T = TypeVar("T")
Convert = Callable[[str, object], T]
MISSING = object()


def show(value: object) -> str:
    """The value as the user wrote it, shortened; tables and arrays described."""
    if isinstance(value, Mapping):
        return "a table"
    shown = mask_userinfo(repr(value))
    return shown if len(shown) <= 80 else shown[:77] + "..."


def bad(key: str, value: object, problem: str, expected: str) -> ConfigError:
    return ConfigError(key, f"{show(value)} {problem}; expected {expected}")


class Problems:
    """Every :class:`ConfigError` found in one read, in the order found.

    A bad value is noted and reading goes on with its default; a table that cannot be
    read at all (a required key missing, a cross-check failing) is given up alone through
    :meth:`attempt`. :meth:`check` then raises one error carrying them all.
    """

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        self.found.extend(error.errors)

    def attempt(self, read: Callable[[], T], fallback: T) -> T:
        """``read()``; on a ConfigError note it and return ``fallback``."""
        try:
            return read()
        except ConfigError as exc:
            self.add(exc)
            return fallback

    def check(self) -> None:
        """Raise one ConfigError listing every problem noted so far, if there is any."""
        if self.found:
            raise ConfigError.of(self.found)


@dataclass(frozen=True, slots=True)
class TableContext:
    """What validation needs beyond the data: where relative paths start, the env, and
    where problems are noted."""

    base_dir: Path
    env: Mapping[str, str]
    problems: Problems = field(default_factory=Problems)


class Table:
    """One TOML table being read; rejects unknown keys up front (with a suggestion)."""

    def __init__(self, data: object, path: str, known: tuple[str, ...], ctx: TableContext) -> None:
        if not isinstance(data, Mapping):
            raise bad(path, data, "is not a table", f"a [{path}] table")
        self.data: Mapping[str, object] = data
        self.path = path
        self.known = known
        self.ctx = ctx
        for name in data:
            if name not in known:
                self.note(ConfigError(self.key(name), unknown_key(name, known)))

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def note(self, error: ConfigError) -> None:
        """Record a problem and read on."""
        self.ctx.problems.add(error)

    def get(self, name: str, convert: Convert[T], default: T) -> T:
        """The converted value, or ``default`` when absent or (noted as a problem) bad."""
        value = self.data.get(name, MISSING)
        if value is MISSING:
            return default
        return self.ctx.problems.attempt(lambda: convert(self.key(name), value), default)

    def optional(self, name: str, convert: Convert[T]) -> T | None:
        return self.get(name, convert, None)

    def require(self, name: str, convert: Convert[T], expected: str) -> T:
        value = self.data.get(name, MISSING)
        if value is MISSING:
            raise ConfigError(self.key(name), f"is missing; expected {expected}")
        return convert(self.key(name), value)

    def table(self, name: str, known: tuple[str, ...]) -> Table:
        return Table(self.data.get(name, {}), self.key(name), known, self.ctx)

    def array(self, name: str, known: tuple[str, ...]) -> list[Table]:
        key = self.key(name)
        items = self.data.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise bad(key, items, "is not an array of tables", f"[[{key}]] tables")
        return [Table(item, f"{key}[{i}]", known, self.ctx) for i, item in enumerate(items)]


def unknown_key(name: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; expected one of {', '.join(known)}"


def string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise bad(key, value, "is not a string", "a string")
    return value


def text(key: str, value: object) -> str:
    """A non-empty string without control characters (it ends up on the wire or in logs)."""
    result = string(key, value).strip()
    if not result or any(ord(c) < 0x20 or ord(c) == 0x7F for c in result):
        raise bad(key, value, "is empty or has control characters", "a non-empty string")
    return result


def boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad(key, value, "is not a boolean", "true or false")
    return value


def integer(lo: int, hi: int) -> Convert[int]:
    expected = f"an integer from {lo} to {hi}"

    def convert(key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(key, value, "is not an integer", expected)
        if not lo <= value <= hi:
            raise bad(key, value, "is out of range", expected)
        return value

    return convert


def number(lo: float, hi: float = math.inf, *, lo_open: bool = False) -> Convert[float]:
    above = f"> {lo:g}" if lo_open else f">= {lo:g}"
    expected = f"a number {above}" + (f" and <= {hi:g}" if hi != math.inf else "")

    def convert(key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(key, value, "is not a number", expected)
        result = float(value)
        low_ok = result > lo if lo_open else result >= lo
        if not (math.isfinite(result) and low_ok and result <= hi):
            raise bad(key, value, "is out of range", expected)
        return result

    return convert


def choice(*options: str) -> Convert[str]:
    def convert(key: str, value: object) -> str:
        result = string(key, value).lower()
        if result not in options:
            raise bad(key, value, "is not allowed", f"one of {', '.join(options)}")
        return result

    return convert


def matching(pattern: str, expected: str) -> Convert[str]:
    compiled = re.compile(pattern)

    def convert(key: str, value: object) -> str:
        result = string(key, value)
        if not compiled.fullmatch(result):
            raise bad(key, value, "is not valid", expected)
        return result

    return convert


def file_in(ctx: TableContext) -> Convert[Path]:
    def convert(key: str, value: object) -> Path:
        path = Path(text(key, value)).expanduser()
        path = path if path.is_absolute() else ctx.base_dir / path
        if not path.is_file():
            raise bad(key, value, "does not exist or is not a file", "a readable file")
        return path

    return convert


def absolute_path(key: str, value: object) -> Path:
    path = Path(text(key, value))
    if not path.is_absolute():
        raise bad(key, value, "is not absolute", "an absolute directory path")
    return path


def freeze(value: object) -> object:
    """Deep read-only copy, so a frozen config cannot be changed through its tables."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def free_table(key: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise bad(key, value, "is not a table", f"a [{key}] table")
    return cast("Mapping[str, object]", freeze(value))


# --------------------------------------------------------------------------- addresses
