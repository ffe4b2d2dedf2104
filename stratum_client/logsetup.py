"""The one place structlog is configured: renderer, per-component levels, redaction.

Library modules only ever do ``log = structlog.get_logger(__name__)`` and bind context
(``pool=``, ``chain=``, ``chip=``); the daemon entry calls :func:`configure_logging` once
(and again on SIGHUP). Everything here is a plain structlog processor, no
``structlog.stdlib`` wrapping, so a log call below every threshold costs one no-op call.

Output goes to stderr, which under systemd is the journal: JSON lines when the stream is
not a terminal (machines read it), a console rendering when a person is watching.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from stratum_client.errors import InputError
from stratum_client.secrets import MASK, Secret

__all__ = [
    "COMPONENT_LOGGERS",
    "LEVELS",
    "ComponentLevelFilter",
    "add_log_tap",
    "add_logger_name",
    "clear_secrets",
    "configure_logging",
    "redact",
    "register_secret",
    "reset_logging",
]

COMPONENT_LOGGERS: Final[dict[str, tuple[str, ...]]] = {
    "pool": ("stratum_client.pool",),
    "session": ("stratum_client.protocol",),
    "dispatcher": ("stratum_client.daemon.dispatcher",),
    "drivers": ("stratum_client.asic", "stratum_client_bm13xx"),
    "api": ("stratum_client.api",),
    "telemetry": ("stratum_client.telemetry", "aiomqtt"),
    "energy": ("stratum_client.energy",),
}
"""Component name (as written under ``[daemon.log_levels]``) → logger-name prefixes.

A prefix matches the logger of that name and its dotted children; the longest matching
prefix wins, so a component may carve a sub-package out of another. Add a component by
adding a line here: the config loader validates ``log_levels`` keys against this dict.
"""

LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""Level names accepted in the config, mapped to their numeric severity."""

_METHOD_LEVELS: Final[Mapping[str, int]] = {
    **LEVELS,
    "warn": logging.WARNING,
    "exception": logging.ERROR,
    "fatal": logging.CRITICAL,
}

SENSITIVE_KEY: Final = re.compile(
    r"pass(?:word|wd|phrase)|secret|token|api_?key|credential|authorization", re.IGNORECASE
)
"""Event keys whose values are always masked, whatever they hold."""

MIN_SECRET_LENGTH: Final = 4
"""Shorter registered secrets are ignored: scrubbing "x" would mangle every message."""

_SCRUB_DEPTH: Final = 4


class _SecretRegistry:
    """Known secret strings, compiled into one alternation for a single-pass scrub."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._values.add(value)
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern


_SECRETS = _SecretRegistry()


def register_secret(value: str | Secret) -> None:
    """Scrub ``value`` from every future log event, wherever it turns up.

    Key-based masking misses a secret that leaked into a message through an f-string
    or an exception text; scrubbing by value catches those too.
    """
    _SECRETS.add(value.reveal() if isinstance(value, Secret) else value)


def clear_secrets() -> None:
    """Forget every registered secret (tests, or a reload that replaced them)."""
    _SECRETS.clear()


def _scrub(value: object, pattern: re.Pattern[str] | None, depth: int = 0) -> object:
    if isinstance(value, str):
        return pattern.sub(MASK, value) if pattern else value
    if value is None or isinstance(value, bool | int | float | Secret) or depth > _SCRUB_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _scrub_item(k, v, pattern, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, pattern, depth + 1) for v in value)
    if pattern is not None:
        text = repr(value)
        if pattern.search(text):
            return pattern.sub(MASK, text)
    return value


def _scrub_item(key: object, value: object, pattern: re.Pattern[str] | None, depth: int) -> object:
    if value is not None and isinstance(key, str) and SENSITIVE_KEY.search(key):
        return MASK
    return _scrub(value, pattern, depth)


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask sensitive keys and scrub registered secret values from the whole event."""
    pattern = _SECRETS.pattern
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub_item(key, value, pattern, 0)
    return event_dict


def add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Record the ``get_logger(__name__)`` name; the per-component filter keys on it."""
    name = getattr(logger, "name", "")
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class ComponentLevelFilter:
    """Drop events below the level of the component their logger belongs to."""

    def __init__(self, default: int, prefixes: Mapping[str, int]) -> None:
        self._default = default
        self._prefixes = dict(prefixes)
        self._cache: dict[str, int] = {}

    def threshold(self, name: str) -> int:
        """The level in force for logger ``name``: its longest matching prefix, or default."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        level = self._default
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self._prefixes:
                level = self._prefixes[candidate]
                break
        self._cache[name] = level
        return level

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        level = _METHOD_LEVELS.get(method)
        name = event_dict.get("logger") or getattr(logger, "name", "")
        if level is not None and level < self.threshold(str(name)):
            raise structlog.DropEvent
        return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that remembers the name it was requested under."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        name = args[0] if args and isinstance(args[0], str) else ""
        return _NamedWriteLogger(self._stream, name)


class _StdlibBridge(logging.Handler):
    """Forwards stdlib records (asyncio, aiomqtt) into the same structlog pipeline."""

    def emit(self, record: logging.LogRecord) -> None:
        level = max(logging.DEBUG, min(logging.CRITICAL, record.levelno // 10 * 10))
        try:
            message = record.getMessage()
            structlog.get_logger(record.name).log(level, message, exc_info=record.exc_info)
        except Exception:  # a broken record must not crash the caller; stdlib convention
            self.handleError(record)


def _level(name: str, what: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        expected = ", ".join(LEVELS)
        raise InputError(what, f"{name!r} is not a log level; expected one of {expected}") from None


def _component_prefixes(component_levels: Mapping[str, str]) -> dict[str, int]:
    prefixes: dict[str, int] = {}
    for component, level_name in component_levels.items():
        if component not in COMPONENT_LOGGERS:
            expected = ", ".join(COMPONENT_LOGGERS)
            raise InputError(component, f"unknown log component; expected one of {expected}")
        level = _level(level_name, component)
        prefixes.update(dict.fromkeys(COMPONENT_LOGGERS[component], level))
    return prefixes


def _renderer_chain(fmt: str, stream: TextIO) -> list[Processor]:
    is_tty = _isatty(stream)
    if fmt == "json" or (fmt == "auto" and not is_tty):
        return [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ]
    if fmt not in ("auto", "console"):
        raise InputError(
            "log_format", f"{fmt!r} is not a log format; expected auto, json or console"
        )
    # Exceptions are pre-formatted in both chains so redaction sees the traceback text.
    return [
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        structlog.processors.format_exc_info,
        redact,
        structlog.dev.ConsoleRenderer(colors=is_tty),
    ]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_logging(
    level: str,
    fmt: str,
    component_levels: Mapping[str, str],
    stream: TextIO | None = None,
    *,
    capture_stdlib: bool = True,
) -> None:
    """Configure structlog (and route stdlib logging into it) for the whole process.

    ``level`` is the default; ``component_levels`` may raise or lower it per component
    (see :data:`COMPONENT_LOGGERS`). Loggers are not cached on first use, so calling this
    again, as a SIGHUP reload does, changes levels for module-level loggers too.
    """
    out = sys.stderr if stream is None else stream
    default = _level(level, "log_level")
    prefixes = _component_prefixes(component_levels)
    floor = min([default, *prefixes.values()])
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_logger_name,
        ComponentLevelFilter(default, prefixes),
        structlog.processors.add_log_level,
        _tap,
        *_renderer_chain(fmt, out),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(floor),
        logger_factory=_NamedLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _install_stdlib_bridge(floor if capture_stdlib else None)


_TAPS: list[Callable[[WrappedLogger, str, EventDict], None]] = []


def add_log_tap(tap: Callable[[WrappedLogger, str, EventDict], None]) -> Callable[[], None]:
    """Show ``tap`` every event that passed the level filters (the live log on ``/api/ws``);
    it must copy before changing anything and must not block. Returns the remover."""
    _TAPS.append(tap)
    return lambda: _TAPS.remove(tap) if tap in _TAPS else None


def _tap(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    for tap in list(_TAPS):
        tap(logger, method, event_dict)
    return event_dict


def _install_stdlib_bridge(level: int | None) -> None:
    root = logging.getLogger()
    for handler in _bridges(root.handlers):
        root.removeHandler(handler)
    if level is not None:
        root.addHandler(_StdlibBridge())
        root.setLevel(level)


def _bridges(handlers: Iterable[logging.Handler]) -> list[logging.Handler]:
    return [h for h in handlers if isinstance(h, _StdlibBridge)]


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests): structlog defaults, no bridge, no secrets."""
    structlog.reset_defaults()
    _install_stdlib_bridge(None)
    clear_secrets()
