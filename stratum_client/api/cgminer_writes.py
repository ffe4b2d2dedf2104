"""The cgminer API's privileged commands: validated into an :class:`Action` for the shell.

Nothing here acts: the shell runs the action against ``MinerControl`` (only for an
allow-listed client), then :func:`stratum_client.api.cgminer.action_reply` words the
outcome. The ``addpool`` password travels as a :class:`Secret` and is never echoed.
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
from stratum_client.api.model import MinerState
from stratum_client.secrets import Secret

__all__ = ["Action", "ActionKind", "plan"]


class ActionKind(enum.StrEnum):
    SWITCH_POOL = "switchpool"
    ENABLE_POOL = "enablepool"
    DISABLE_POOL = "disablepool"
    ADD_POOL = "addpool"
    RESTART = "restart"
    QUIT = "quit"
    SET_FREQUENCY = "ascset"


@dataclass(frozen=True, slots=True)
class Action:
    """A validated privileged command for the shell to run against ``MinerControl``."""

    kind: ActionKind
    index: int = -1
    """Pool index (pool commands) or ASC index (``ascset``)."""
    target: str = ""
    """Pool URL or device name, for the reply and the control call."""
    mhz: float = 0.0
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


def _plan_ascset(state: MinerState, param: str | None, ctx: Ctx) -> Action | Section:
    index = asc_index(state, param, ctx)
    if isinstance(index, Section):
        return index
    fields = (param or "").split(",")
    option = fields[1].strip().lower() if len(fields) > 1 else ""
    if not option:
        return Section(status(ctx, Sev.ERROR, Code.MISASCOPT, "Missing option after ASC number"))
    if option == "help":
        msg = f"ASC {index} set help: freq,MHZ"
        return Section(status(ctx, Sev.INFO, Code.ASCHELP, msg))
    mhz = _frequency(fields[2] if len(fields) > 2 else "")
    if option != "freq" or mhz is None:
        msg = f"ASC {index} set failed: use freq,MHZ with MHZ from 1 to {MAX_MHZ:g}"
        return Section(status(ctx, Sev.ERROR, Code.ASCSETERR, msg))
    return Action(ActionKind.SET_FREQUENCY, index=index, target=state.devices[index].name, mhz=mhz)


def _frequency(text: str) -> float | None:
    try:
        mhz = float(text.strip()[:32])
    except ValueError:
        return None
    return mhz if math.isfinite(mhz) and 1.0 <= mhz <= MAX_MHZ else None


def plan(name: str, state: MinerState, param: str | None, ctx: Ctx) -> Action | Section:
    kind = ActionKind(name)
    if kind in (ActionKind.SWITCH_POOL, ActionKind.ENABLE_POOL, ActionKind.DISABLE_POOL):
        return _plan_pool(kind, state, param, ctx)
    if kind is ActionKind.ADD_POOL:
        return _plan_addpool(param, ctx)
    if kind is ActionKind.SET_FREQUENCY:
        return _plan_ascset(state, param, ctx)
    return Action(kind)
