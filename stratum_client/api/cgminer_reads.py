"""The cgminer API's read commands: miner state in, reply sections out.

Field names, units and types follow cgminer 4.13, plus the Bitmain-fork keys
``GHS 5s``/``GHS av`` that pyasic reads. ``MHS 5s`` is the 1-minute rate: a 5-second
estimate from a handful of nonces would be noise.
"""

from __future__ import annotations

from stratum_client.api.board_fields import cgminer_board_fields
from stratum_client.api.cgminer_wire import (
    API_VERSION,
    CGMINER_COMPAT,
    PRODUCT,
    Code,
    Ctx,
    JsonRow,
    Section,
    Sev,
    diff,
    ghs,
    mhs,
    num,
    pct,
    small_index,
    status,
)
from stratum_client.api.model import DeviceState, MinerState, PoolShares, PoolStatus

__all__ = [
    "asc",
    "asc_index",
    "asccount",
    "config",
    "devdetails",
    "devs",
    "edevs",
    "pools",
    "stats",
    "summary",
    "version",
]


def _pool_url(pool: PoolStatus) -> str:
    """pyasic knows stratum+tcp/stratum+ssl only, so the tls alias is shown as ssl."""
    scheme, sep, rest = pool.url.partition("://")
    return f"stratum+ssl://{rest}" if sep and scheme == "stratum+tls" else pool.url


def _poolstatus(pool: PoolStatus) -> str:
    return {"active": "Alive", "standby": "Alive", "disabled": "Disabled"}.get(pool.state, "Dead")


def version(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    row: JsonRow = {"CGMiner": CGMINER_COMPAT, "API": API_VERSION, PRODUCT: state.version}
    return Section(status(ctx, Sev.SUCCESS, Code.VERSION, "CGMiner versions"), "VERSION", (row,))


def config(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    row: JsonRow = {
        "ASC Count": len(state.devices),
        "PGA Count": 0,
        "Pool Count": len(state.pools),
        "Strategy": "Failover",
        "Log Interval": 60,
        "Device Code": "ASC ",
        "OS": "Linux",
        "Hotplug": "None",
    }
    return Section(status(ctx, Sev.SUCCESS, Code.MINECONFIG, "CGMiner config"), "CONFIG", (row,))


def _summary_row(state: MinerState) -> JsonRow:
    elapsed = max(state.elapsed, 0.0)
    minutes = elapsed / 60.0
    rate = state.hashrate
    diff1 = sum(device.diff1_work for device in state.devices)
    shares_diff = state.difficulty_accepted + state.difficulty_rejected + state.difficulty_stale
    return {
        "Elapsed": int(elapsed),
        "MHS av": mhs(rate.average),
        "MHS 5s": mhs(rate.m1),
        "MHS 1m": mhs(rate.m1),
        "MHS 5m": mhs(rate.m5),
        "MHS 15m": mhs(rate.m15),
        "GHS 5s": ghs(rate.m1),
        "GHS av": ghs(rate.average),
        "Found Blocks": state.found_blocks,
        "Getworks": 0,
        "Accepted": state.accepted,
        "Rejected": state.rejected,
        "Hardware Errors": state.hw_errors,
        "Utility": num(state.accepted / minutes, 2) if minutes > 0 else 0.0,
        "Discarded": 0,
        "Stale": state.stale,
        "Get Failures": sum(pool.failures for pool in state.pools),
        "Local Work": 0,
        "Remote Failures": 0,
        "Network Blocks": 0,
        "Total MH": num(rate.average * elapsed / 1e6, 4),
        "Work Utility": num(diff1 / minutes, 2) if minutes > 0 else 0.0,
        "Difficulty Accepted": diff(state.difficulty_accepted),
        "Difficulty Rejected": diff(state.difficulty_rejected),
        "Difficulty Stale": diff(state.difficulty_stale),
        "Best Share": int(num(state.best_share, 0)),
        "Device Hardware%": pct(state.hw_errors, state.hw_errors + diff1),
        "Device Rejected%": pct(state.difficulty_rejected, diff1),
        "Pool Rejected%": pct(state.difficulty_rejected, shares_diff),
        "Pool Stale%": pct(state.difficulty_stale, shares_diff),
        "Last getwork": int(state.when),
    }


def summary(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    head = status(ctx, Sev.SUCCESS, Code.SUMM, "Summary")
    return Section(head, "SUMMARY", (_summary_row(state),))


def _pool_row(pool: PoolStatus, figures: PoolShares) -> JsonRow:
    """``Diff1 Shares`` is a float (cgminer's is an integer): work at scaled-down ticket
    difficulties, as on emulated chips, is a fraction of a difficulty-1 share."""
    hostport = pool.url.partition("://")[2] or pool.url
    difficulty = diff(pool.difficulty or 0.0)
    shares = pool.accepted + pool.rejected
    return {
        "POOL": pool.index,
        "Name": pool.name,
        "URL": _pool_url(pool),
        "Status": _poolstatus(pool),
        "Priority": pool.priority,
        "Quota": 1,
        "Long Poll": "N",
        "Getworks": 0,
        "Accepted": pool.accepted,
        "Rejected": pool.rejected,
        "Works": 0,
        "Discarded": 0,
        "Stale": pool.stale,
        "Get Failures": pool.failures,
        "Remote Failures": 0,
        "User": pool.user,
        "Last Share Time": int(figures.last_share_at or 0),
        "Diff1 Shares": diff(figures.diff1_shares),
        "Proxy Type": "",
        "Proxy": "",
        "Difficulty Accepted": diff(figures.accepted_difficulty),
        "Difficulty Rejected": diff(figures.rejected_difficulty),
        "Difficulty Stale": 0.0,
        "Last Share Difficulty": 0.0,
        "Work Difficulty": difficulty,
        "Has Stratum": True,
        "Stratum Active": pool.state == "active",
        "Stratum URL": hostport,
        "Stratum Difficulty": difficulty,
        "Has Vmask": pool.version_mask != 0,
        "Has GBT": False,
        "Best Share": int(num(figures.best_share, 0)),
        "Pool Rejected%": pct(pool.rejected, shares),
        "Pool Stale%": pct(pool.stale, shares),
        "Bad Work": 0,
        "Current Block Height": 0,
        "Current Block Version": 0,
        "Connects": pool.connects,
        "Last Error": pool.last_error,
    }


def pools(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    if not state.pools:
        return Section(status(ctx, Sev.ERROR, Code.NOPOOL, "No pools"))
    head = status(ctx, Sev.SUCCESS, Code.POOL, f"{len(state.pools)} Pool(s)")
    return Section(
        head, "POOLS", tuple(_pool_row(pool, state.shares_of(pool.index)) for pool in state.pools)
    )


def _device_row(index: int, device: DeviceState, state: MinerState) -> JsonRow:
    rate = device.hashrate
    elapsed = max(device.elapsed, 0.0)
    minutes = elapsed / 60.0
    last_share = int(device.last_share_at or 0)
    active = state.active_pool
    return {
        "ASC": index,
        "Name": device.model,
        "ID": index,
        "Enabled": "Y" if device.enabled else "N",
        "Status": str(device.status),
        "Temperature": num(device.temperature_c or 0.0, 2),
        "MHS av": mhs(rate.average),
        "MHS 5s": mhs(rate.m1),
        "MHS 1m": mhs(rate.m1),
        "MHS 5m": mhs(rate.m5),
        "MHS 15m": mhs(rate.m15),
        "Accepted": device.accepted,
        "Rejected": device.rejected,
        "Hardware Errors": device.hw_errors,
        "Utility": num(device.accepted / minutes, 2) if minutes > 0 else 0.0,
        "Last Share Pool": active.index if active else -1,
        "Last Share Time": last_share,
        "Total MH": num(rate.average * elapsed / 1e6, 4),
        "Diff1 Work": diff(device.diff1_work),
        "Difficulty Accepted": diff(device.difficulty_accepted),
        "Difficulty Rejected": diff(device.difficulty_rejected),
        "Last Share Difficulty": diff(device.last_share_difficulty),
        "No Device": device.status == "Dead",
        "Last Valid Work": last_share,
        "Device Hardware%": pct(device.hw_errors, device.hw_errors + device.diff1_work),
        "Device Rejected%": pct(device.difficulty_rejected, device.diff1_work),
        "Device Elapsed": int(elapsed),
        "Device Name": device.name,
        "Chips": device.chips,
        "Frequency": num(device.frequency_mhz, 2),
    }


def _devs_section(state: MinerState, ctx: Ctx, *, enabled_only: bool) -> Section:
    rows = tuple(
        _device_row(i, device, state)
        for i, device in enumerate(state.devices)
        if device.enabled or not enabled_only
    )
    if not rows:
        return Section(status(ctx, Sev.ERROR, Code.NODEVS, "No ASCs"))
    return Section(status(ctx, Sev.SUCCESS, Code.DEVS, f"{len(rows)} ASC(s)"), "DEVS", rows)


def devs(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    return _devs_section(state, ctx, enabled_only=False)


def edevs(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    return _devs_section(state, ctx, enabled_only=True)


def asc_index(state: MinerState, parameter: str | None, ctx: Ctx) -> int | Section:
    """The ASC id in ``parameter`` (before any comma), or the error section."""
    if not state.devices:
        return Section(status(ctx, Sev.ERROR, Code.ASCNON, "No ASCs"))
    if not parameter:
        return Section(status(ctx, Sev.ERROR, Code.MISID, "Missing device id parameter"))
    index = small_index(parameter.split(",", 1)[0])
    if index is None or index >= len(state.devices):
        shown = parameter.split(",", 1)[0][:16]
        msg = f"Invalid ASC id {shown} - range is 0 - {len(state.devices) - 1}"
        return Section(status(ctx, Sev.ERROR, Code.INVASC, msg))
    return index


def asc(state: MinerState, param: str | None, ctx: Ctx) -> Section:
    index = asc_index(state, param, ctx)
    if isinstance(index, Section):
        return index
    row = _device_row(index, state.devices[index], state)
    return Section(status(ctx, Sev.SUCCESS, Code.ASCDEV, f"ASC{index}"), "ASC", (row,))


def asccount(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    row: JsonRow = {"Count": len(state.devices)}
    return Section(status(ctx, Sev.SUCCESS, Code.NUMASC, "ASC count"), "ASCS", (row,))


def devdetails(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    rows = tuple(
        {
            "DEVDETAILS": i,
            "Name": device.model,
            "ID": i,
            "Driver": device.model.lower(),
            "Kernel": "",
            "Model": device.model,
            "Device Path": device.name,
            "Chips": device.chips,
        }
        for i, device in enumerate(state.devices)
    )
    head = status(ctx, Sev.SUCCESS, Code.DEVDETAILS, "Device Details")
    return Section(head, "DEVDETAILS", rows)


def _stats_device(number: int, index: int, device: DeviceState) -> JsonRow:
    row: JsonRow = {
        "STATS": number,
        "ID": f"ASC{index}",
        "Elapsed": int(max(device.elapsed, 0.0)),
        "Device Name": device.name,
        "Model": device.model,
        "Chips": device.chips,
        "Chips Alive": device.chips_alive,
        "Frequency": num(device.frequency_mhz, 2),
        "Temp": num(device.temperature_c or 0.0, 2),
        "Nonces": device.nonces,
        "Dups": sum(chip.duplicates for chip in device.chip_counters),
        "Hardware Errors": device.hw_errors,
    }
    row.update(cgminer_board_fields(device))
    for chip in device.chip_counters:
        row[f"Chip{chip.index} Nonces"] = chip.nonces
        row[f"Chip{chip.index} HW"] = chip.hw_errors
    return row


def stats(state: MinerState, _param: str | None, ctx: Ctx) -> Section:
    """At least two entries with ``Elapsed``: pyasic reads ``STATS[1]["Elapsed"]``."""
    elapsed = int(max(state.elapsed, 0.0))
    rows: list[JsonRow] = [
        {
            "STATS": 0,
            "ID": "STRATUM0",
            "Elapsed": elapsed,
            "Type": PRODUCT,
            "Version": state.version,
        },
        {
            "STATS": 1,
            "ID": "MINER0",
            "Elapsed": elapsed,
            "GHS 5s": ghs(state.hashrate.m1),
            "GHS av": ghs(state.hashrate.average),
            "Chips": sum(device.chips for device in state.devices),
            "Chips Alive": sum(device.chips_alive for device in state.devices),
            "Power": num(state.power_w or 0.0, 2),
            "Mining": str(state.mining),
        },
    ]
    for index, device in enumerate(state.devices):
        rows.append(_stats_device(len(rows), index, device))
    for pool in state.pools:
        rows.append({"STATS": len(rows), "ID": f"POOL{pool.index}", "Elapsed": elapsed})
    head = status(ctx, Sev.SUCCESS, Code.MINESTATS, "CGMiner stats")
    return Section(head, "STATS", tuple(rows))
