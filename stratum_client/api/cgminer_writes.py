"""The cgminer API's privileged commands: validated into an :class:`Action` for the shell.

Nothing here acts: the shell runs the action against ``MinerControl`` (only for an
allow-listed client), then :func:`stratum_client.api.cgminer.action_reply` words the
outcome. The ``addpool`` password travels as a :class:`Secret` and is never echoed.

``ascset|N,OPTION,VALUE`` takes cgminer's per-device options: ``freq,MHZ`` for any chain,
and for a chain on a board ``fan,PERCENT`` (a fixed duty; ``fan,auto`` gives the fan
back to the board's PID) and ``voltage,VOLTS`` (the core voltage). The board's limits
come with its readout in the state, so a value outside them, or a chain without a board
or whose board cannot set that, is refused here with a status that says which; the
board checks its limits again before anything is sent.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from stratum_client.api.cgminer_reads import asc_index
from stratum_client.api.cgminer_wire import (
    MAX_MHZ,
    Code,
    Ctx,
    Section,
    Sev,
    small_index,
    split_escaped,
    status,
)
from stratum_client.api.model import BoardReadout, DeviceState, MinerState
from stratum_client.secrets import Secret

__all__ = ["Action", "ActionKind", "AscOption", "plan"]


class ActionKind(enum.StrEnum):
    SWITCH_POOL = "switchpool"
    ENABLE_POOL = "enablepool"
    DISABLE_POOL = "disablepool"
    ADD_POOL = "addpool"
    RESTART = "restart"
    QUIT = "quit"
    ASC_SET = "ascset"


class AscOption(enum.StrEnum):
    """What ``ascset|N,OPTION,VALUE`` sets."""

    FREQ = "freq"
    FAN = "fan"
    VOLTAGE = "voltage"


@dataclass(frozen=True, slots=True)
class Action:
    """A validated privileged command for the shell to run against ``MinerControl``."""

    kind: ActionKind
    index: int = -1
    """Pool index (pool commands) or ASC index (``ascset``)."""
    target: str = ""
    """Pool URL or device name, for the reply and the control call."""
    option: AscOption | None = None
    """``ascset``: what to set."""
    value: float | None = None
    """``ascset``: MHz, percent or volts; None with ``fan``: the board's PID drives it."""
    user: str = ""
    password: Secret | None = None

    @property
    def replies_first(self) -> bool:
        """restart/quit answer before acting: afterwards nobody may be listening."""
        return self.kind in (ActionKind.RESTART, ActionKind.QUIT)


def _poolsmall_index(state: MinerState, parameter: str | None, ctx: Ctx) -> int | Section:
    if not state.pools:
        return Section(status(ctx, Sev.ERROR, Code.NOPOOL, "No pools"))
    if not parameter:
        return Section(status(ctx, Sev.ERROR, Code.MISPID, "Missing pool id parameter"))
    index = small_index(parameter)
    if index is None or index >= len(state.pools):
        msg = f"Invalid pool id {parameter[:16]} - range is 0 - {len(state.pools) - 1}"
        return Section(status(ctx, Sev.ERROR, Code.INVPID, msg))
    return index


def _plan_pool(
    kind: ActionKind, state: MinerState, param: str | None, ctx: Ctx
) -> Action | Section:
    index = _poolsmall_index(state, param, ctx)
    if isinstance(index, Section):
        return index
    pool = state.pools[index]
    if kind is ActionKind.ENABLE_POOL and pool.state != "disabled":
        msg = f"Pool {index}:'{pool.url}' already enabled"
        return Section(status(ctx, Sev.INFO, Code.ALRENAP, msg))
    if kind is ActionKind.DISABLE_POOL and pool.state == "disabled":
        msg = f"Pool {index}:'{pool.url}' already disabled"
        return Section(status(ctx, Sev.INFO, Code.ALRDISP, msg))
    return Action(kind, index=index, target=pool.url)


def _plan_addpool(param: str | None, ctx: Ctx) -> Action | Section:
    if not param:
        return Section(status(ctx, Sev.ERROR, Code.MISPDP, "Missing addpool details"))
    parts = split_escaped(param)
    url = parts[0].strip()
    if len(parts) != 3 or not url or not parts[1] or len(url) > 256 or not url.isprintable():
        msg = "Invalid addpool details: expected URL,USR,PASS"
        return Section(status(ctx, Sev.ERROR, Code.INVPDP, msg))
    return Action(ActionKind.ADD_POOL, target=url, user=parts[1], password=Secret(parts[2]))


_ASC_HELP = "freq,MHZ fan,PERCENT|auto voltage,VOLTS (fan and voltage: on a board)"


def _plan_ascset(state: MinerState, param: str | None, ctx: Ctx) -> Action | Section:
    index = asc_index(state, param, ctx)
    if isinstance(index, Section):
        return index
    fields = (param or "").split(",")
    option = fields[1].strip().lower() if len(fields) > 1 else ""
    if not option:
        return Section(status(ctx, Sev.ERROR, Code.MISASCOPT, "Missing option after ASC number"))
    if option == "help":
        return Section(status(ctx, Sev.INFO, Code.ASCHELP, f"ASC {index} set help: {_ASC_HELP}"))
    text = fields[2].strip()[:32] if len(fields) > 2 else ""
    device = state.devices[index]
    planned = _asc_value(device, option, text)
    if isinstance(planned, str):
        msg = f"ASC {index} set failed: {planned}"
        return Section(status(ctx, Sev.ERROR, Code.ASCSETERR, msg))
    chosen, value = planned
    return Action(ActionKind.ASC_SET, index=index, target=device.name, option=chosen, value=value)


def _asc_value(device: DeviceState, option: str, text: str) -> tuple[AscOption, float | None] | str:
    """The option and its value, or what is wrong with them (for the E status)."""
    if option == AscOption.FREQ:
        mhz = _finite(text)
        if mhz is None or not 1.0 <= mhz <= MAX_MHZ:
            return f"use freq,MHZ with MHZ from 1 to {MAX_MHZ:g}"
        return AscOption.FREQ, mhz
    if option not in (AscOption.FAN, AscOption.VOLTAGE):
        return f"unknown option {option[:16]!r}; use {_ASC_HELP}"
    chosen = AscOption(option)
    board = device.board
    if board is None:
        return f"{device.name} reports no board: {chosen} needs a chain on a board"
    if chosen is AscOption.FAN and text.lower() == "auto":
        return (chosen, None) if board.fan_limits is not None else _cannot(board, chosen)
    return _within(board, chosen, text)


def _within(board: BoardReadout, option: AscOption, text: str) -> tuple[AscOption, float] | str:
    limits = board.fan_limits if option is AscOption.FAN else board.core_voltage_limits
    if limits is None:
        return _cannot(board, option)
    unit = "PERCENT" if option is AscOption.FAN else "VOLTS"
    value, (low, high) = _finite(text), limits
    if value is None:
        auto = " or fan,auto" if option is AscOption.FAN else ""
        return f"use {option},{unit} with {unit} from {low:g} to {high:g}{auto}"
    if not low <= value <= high:
        return f"{option} {value:g} is outside {board.board}'s limits {low:g}..{high:g}"
    return option, value


def _cannot(board: BoardReadout, option: AscOption) -> str:
    return f"{board.board} cannot set its {option}"


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def plan(name: str, state: MinerState, param: str | None, ctx: Ctx) -> Action | Section:
    kind = ActionKind(name)
    if kind in (ActionKind.SWITCH_POOL, ActionKind.ENABLE_POOL, ActionKind.DISABLE_POOL):
        return _plan_pool(kind, state, param, ctx)
    if kind is ActionKind.ADD_POOL:
        return _plan_addpool(param, ctx)
    if kind is ActionKind.ASC_SET:
        return _plan_ascset(state, param, ctx)
    return Action(kind)
