"""The board keys of a ``[[devices]]`` table: ``board``, ``ports``, ``board_options`` and
``[devices.safety]``.

A table naming a board gets its chip driver, chip count and chain port from the board
(``driver``/``port`` are then not allowed; ``chips`` only for a board that does not know
its own). The board class is looked up and instantiated here, so an unknown board, a
missing port role or a setting outside the board's limits stops the config from loading
with an error naming the key, instead of surfacing when the daemon starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType

from stratum_client import tomlschema as ts
from stratum_client.errors import ConfigError
from stratum_client.tomlschema import Table

from .base import BoardSpec, ChainPort
from .errors import BoardError, BoardLimitError, BoardNotFoundError
from .registry import load_board
from .safety import SafetyConfig

__all__ = ["BOARD_KEYS", "BoardEntry", "ParsedBoard", "parse_board"]

BOARD_KEYS = ("board", "ports", "board_options", "safety", "core_voltage_v", "fan_percent")
"""Keys a ``[[devices]]`` table may carry besides the chain keys."""
_SAFETY_KEYS = tuple(f.name for f in fields(SafetyConfig))
_INT_SAFETY = {"max_recoveries_per_hour", "bad_readings_limit"}
_NOT_WITH_BOARD = ("driver", "port")


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """What the daemon needs to run one board: its spec and its safety thresholds."""

    spec: BoardSpec
    safety: SafetyConfig = field(default_factory=SafetyConfig)


@dataclass(frozen=True, slots=True)
class ParsedBoard:
    """A board table read: the board, and the chain it carries (for the chain keys)."""

    entry: BoardEntry
    chain: ChainPort


def _ports(t: Table, roles: tuple[str, ...]) -> dict[str, str]:
    ports = t.require("ports", ts.free_table, f"a table of ports: {', '.join(roles)}")
    out: dict[str, str] = {}
    for role, path in ports.items():
        key = f"{t.key('ports')}.{role}"
        if role not in roles:
            raise ConfigError(key, f"is not a port of this board (it has: {', '.join(roles)})")
        out[role] = ts.text(key, path)
    missing = [r for r in roles if r not in out]
    if missing:
        raise ConfigError(t.key("ports"), f"is missing the {', '.join(missing)} port")
    return out


def _safety(t: Table) -> SafetyConfig:
    s = t.table("safety", _SAFETY_KEYS)
    values: dict[str, float | int] = {}
    for name in s.data:
        if name in _INT_SAFETY:
            values[name] = s.get(name, ts.integer(0, 1000), 0)
        elif name in _SAFETY_KEYS:
            values[name] = s.get(name, ts.number(-100, 1e6), 0.0)
    try:
        return SafetyConfig(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(t.key("safety"), str(exc)) from None


def _setting_key(t: Table, error: BoardLimitError) -> str:
    name = {"core_voltage": "core_voltage_v"}.get(error.setting, error.setting)
    return t.key(name)


def parse_board(t: Table) -> ParsedBoard:
    """Read the board keys of one ``[[devices]]`` table (``board`` is present)."""
    board_name = t.require("board", ts.text, "a board name such as bitaxe-gamma")
    try:
        cls = load_board(board_name)
    except BoardNotFoundError as exc:
        raise ConfigError(t.key("board"), str(exc)) from None
    except BoardError as exc:
        raise ConfigError(t.key("board"), f"cannot be loaded: {exc}") from None
    for key in _NOT_WITH_BOARD:
        if key in t.data and not (key == "driver" and cls.chip_driver is None):
            t.note(ConfigError(t.key(key), f"is implied by board {board_name!r}; remove it"))
    spec = BoardSpec(
        board=board_name,
        ports=MappingProxyType(_ports(t, cls.port_roles)),
        driver=t.optional("driver", ts.text),
        chips=t.optional("chips", ts.integer(1, 256)),
        frequency_mhz=t.optional("frequency_mhz", ts.number(1, 2000)),
        core_voltage_v=t.optional("core_voltage_v", ts.number(0, 5)),
        fan_percent=t.optional("fan_percent", ts.number(0, 100)),
        board_options=t.get("board_options", ts.free_table, MappingProxyType({})),
    )
    try:
        board = cls(spec)
        (chain, *_) = board.chains
    except BoardLimitError as exc:
        raise ConfigError(_setting_key(t, exc), str(exc)) from None
    except (BoardError, ValueError, TypeError) as exc:
        raise ConfigError(t.key("board"), f"{board_name}: {exc}") from None
    return ParsedBoard(BoardEntry(spec, _safety(t)), chain)
