"""An AxeOS-compatible REST API without I/O: a request in, a response or an action out.

Bitaxe dashboards, exporters and pyasic poll ``GET /api/system/info`` on ESP-Miner
firmware (AxeOS). Serving the same paths, field names and units lets those tools watch a
daemon that drives the same BM13xx chips. The daemon may run several chains; AxeOS
describes one board, so figures are summed (hashrate, chips, power, shares) or
chip-weighted averages (frequency, temperature, voltage). A host with one chip model
shows it in ``ASICModel``; a host mixing models names them all (``"BM1366+BM1397"``,
which no AxeOS tool mistakes for one board) and ``asicModels`` lists each model's count.

``GET /`` says in plain words that this is *not* AxeOS, but the page contains the word
"AxeOS", which is what pyasic's ``get_miner`` looks for to pick its Bitaxe backend.
Values the daemon cannot know (input voltage and current, fans, VR temperature) are 0, as
ESP-Miner shows on boards without the sensor; AxeOS never sends ``null``.

Writes (:mod:`.rest_writes`) come back from :func:`dispatch` as a :class:`RestAction`
for the shell to run. HTTP itself (parsing, limits, keep-alive) is aiohttp's job in
:mod:`.rest_server`.
"""

from __future__ import annotations

import html
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from stratum_client.api.board_fields import axeos_board_fields
from stratum_client.api.model import ControlOutcome, DeviceState, MinerState, PoolStatus
from stratum_client.api.rest_http import (
    MAX_BODY,
    HttpRequest,
    HttpResponse,
    error,
    json_response,
)
from stratum_client.api.rest_writes import (
    MAX_MHZ,
    RestAction,
    RestActionKind,
    action_response,
    patch_system,
    post,
)
from stratum_client.asic.registry import chip_facts
from stratum_client.secrets import Secret
from stratum_client.units import GIGA, in_unit

__all__ = [
    "MAX_BODY",
    "MAX_MHZ",
    "NOT_AXEOS",
    "ROUTES",
    "STAT_LABELS",
    "ControlOutcome",
    "HttpRequest",
    "HttpResponse",
    "RestAction",
    "RestActionKind",
    "StatisticsHistory",
    "StatisticsSource",
    "action_response",
    "dispatch",
    "error",
    "format_difficulty",
    "index_page",
    "model_counts",
    "statistics_response",
    "system_info",
]

STATS_LIMIT = 720
"""ESP-Miner keeps this many statistics samples."""


# --------------------------------------------------------------------------- figures


def format_difficulty(value: float) -> str:
    """AxeOS's short form: 950, 12.3K, 1.23M, 4.56G (three significant digits)."""
    if not math.isfinite(value) or value < 1:
        return "0"
    if value < 1000:
        return str(int(value))
    for suffix in "KMGTPE":
        value /= 1000.0
        text = f"{value:.3g}"
        if float(text) < 1000:
            return f"{text}{suffix}"
    return f"{value:.0f}E"


def _num(value: float, digits: int = 2) -> float:
    return round(value, digits) if math.isfinite(value) else 0.0


def _ghs(hps: float) -> float:
    return in_unit(hps, GIGA, 3)


def _weighted(
    devices: Sequence[DeviceState], value: Callable[[DeviceState], float | None]
) -> float:
    """Chip-weighted mean over the devices that report ``value``; 0 if none do."""
    pairs = [(d.chips, v) for d in devices if (v := value(d)) is not None]
    chips = sum(n for n, _ in pairs)
    return sum(n * v for n, v in pairs) / chips if chips else 0.0


def _small_cores(device: DeviceState) -> int:
    if device.small_cores:
        return device.small_cores
    facts = chip_facts(device.model)
    return facts.small_cores if facts else 0


def _nonces(state: MinerState) -> int:
    return sum(device.nonces for device in state.devices)


def _error_percentage(state: MinerState) -> float:
    work = _nonces(state) + state.hw_errors
    return _num(state.hw_errors / work * 100.0) if work else 0.0


def _power(state: MinerState) -> float:
    if state.power_w is not None:
        return state.power_w
    return sum(device.power_w or 0.0 for device in state.devices)


def _expected_ghs(state: MinerState) -> float:
    mhs = sum(d.frequency_mhz * _small_cores(d) * d.chips for d in state.devices)
    return _num(mhs / 1000.0)


def _host_port(pool: PoolStatus | None) -> tuple[str, int]:
    if pool is None:
        return "", 0
    try:
        split = urlsplit(pool.url)
        return split.hostname or "", split.port or 0
    except ValueError:  # the daemon validates URLs; a bad one must not break the page
        return "", 0


# --------------------------------------------------------------------------- info


def _info_hashing(state: MinerState) -> dict[str, object]:
    pool = state.active_pool
    return {
        "hashRate": _ghs(state.hashrate.m1),
        "hashRate_1m": _ghs(state.hashrate.m1),
        "expectedHashrate": _expected_ghs(state),
        "errorPercentage": _error_percentage(state),
        "sharesAccepted": state.accepted,
        "sharesRejected": state.rejected,
        "sharesRejectedReasons": [
            {"message": reason, "count": count} for reason, count in state.rejected_reasons
        ],
        "bestDiff": format_difficulty(state.best_share),
        "bestSessionDiff": format_difficulty(state.best_share),
        "poolDifficulty": _num((pool.difficulty or 0.0) if pool else 0.0),
        "stratumDiff": _num((pool.difficulty or 0.0) if pool else 0.0),
        "blockFound": state.found_blocks,
        "uptimeSeconds": int(max(state.elapsed, 0.0)),
        "miningPaused": state.mining == "paused",
    }


def _info_power(state: MinerState) -> dict[str, object]:
    devices = state.devices
    core_mv = _weighted(devices, lambda d: None if d.voltage_v is None else d.voltage_v * 1000)
    frequency = _weighted(devices, lambda d: d.frequency_mhz)
    return {
        "power": _num(_power(state)),
        "voltage": 0,
        "current": 0,
        "temp": _num(_weighted(devices, lambda d: d.temperature_c), 1),
        "vrTemp": 0,
        "coreVoltage": round(core_mv),
        "coreVoltageActual": round(core_mv),
        "frequency": _num(frequency),
        "actualFrequency": _num(frequency),
        "fanspeed": 0,
        "fanrpm": 0,
        "autofanspeed": 1,
        "temptarget": 0,
        "overheat_mode": 0,
        "overclockEnabled": 0,
        **axeos_board_fields(devices),
    }


def model_counts(state: MinerState) -> list[dict[str, object]]:
    """``asicModels``: each chip model on the host with its chip and small-core counts."""
    return [
        {"model": model, "count": count, "smallCoreCount": _model_cores(model)}
        for model, count in state.chips_by_model.items()
    ]


def _model_cores(model: str) -> int:
    known = chip_facts(model)
    return known.small_cores if known else 0


def _model_name(state: MinerState) -> str:
    """One model's name, or every model joined by "+" on a mixed host."""
    return "+".join(state.chips_by_model)


def _info_board(state: MinerState) -> dict[str, object]:
    first = state.devices[0] if state.devices else None
    single = len(state.chips_by_model) == 1
    return {
        "ASICModel": _model_name(state),
        "asicCount": sum(device.chips for device in state.devices),
        "asicModels": model_counts(state),
        "smallCoreCount": _small_cores(first) if first and single else 0,
        "hostname": state.hostname,
        "macAddr": state.mac_address or "00:00:00:00:00:00",
        "version": state.version,
        "axeOSVersion": f"stratum-client {state.version}",
        "boardVersion": "stratum-client",
        "ssid": "",
        "wifiStatus": "",
    }


def _info_pools(state: MinerState) -> dict[str, object]:
    primary = state.pools[0] if state.pools else None
    fallback = state.pools[1] if len(state.pools) > 1 else None
    host, port = _host_port(primary)
    fallback_host, fallback_port = _host_port(fallback)
    active = state.active_pool
    return {
        "stratumURL": host,
        "stratumPort": port,
        "stratumUser": primary.user if primary else "",
        "fallbackStratumURL": fallback_host,
        "fallbackStratumPort": fallback_port,
        "fallbackStratumUser": fallback.user if fallback else "",
        "isUsingFallbackStratum": int(active is not None and active.index != 0),
        "poolConnectionInfo": active.name if active else "",
    }


def system_info(state: MinerState) -> dict[str, object]:
    """``GET /api/system/info``: ESP-Miner's field names and units (GH/s, W, mV, °C)."""
    return {
        **_info_power(state),
        **_info_hashing(state),
        **_info_board(state),
        **_info_pools(state),
    }


def _asic(state: MinerState) -> dict[str, object]:
    first = state.devices[0] if state.devices else None
    model = chip_facts(first.model) if first else None
    current = sorted({round(d.frequency_mhz) for d in state.devices})
    default_mhz = round(model.default_mhz) if model else 0
    return {
        "ASICModel": _model_name(state),
        "deviceModel": "stratum-client",
        "asicCount": sum(device.chips for device in state.devices),
        "asicModels": model_counts(state),
        "defaultFrequency": default_mhz,
        "frequencyOptions": sorted({*current, *([default_mhz] if model else [])}),
        "defaultVoltage": model.default_mv if model else 0,
        "voltageOptions": [model.default_mv] if model else [],
    }


# --------------------------------------------------------------------------- statistics

STAT_LABELS: tuple[str, ...] = (
    "hashrate",
    "hashrate_1m",
    "errorPercentage",
    "asicTemp",
    "vrTemp",
    "asicVoltage",
    "voltage",
    "power",
    "current",
    "fanSpeed",
    "fanRpm",
)
"""ESP-Miner's statistics columns that the daemon can fill (10m/1h hashrates it cannot)."""


class StatisticsSource(Protocol):
    """Samples for ``/api/system/statistics``: (ms since this daemon started, values in
    :data:`STAT_LABELS` order), oldest first. Samples from before a restart are negative."""

    def rows(self) -> Iterable[tuple[int, Sequence[float]]]: ...


def stat_values(state: MinerState) -> tuple[float, ...]:
    """One sample of :data:`STAT_LABELS` from a snapshot."""
    info = system_info(state)
    values = (
        info["hashRate"],
        info["hashRate_1m"],
        info["errorPercentage"],
        info["temp"],
        0.0,
        info["coreVoltageActual"],
        0.0,
        info["power"],
        0.0,
        0.0,
        0.0,
    )
    return tuple(float(v) if isinstance(v, int | float) else 0.0 for v in values)


class StatisticsHistory:
    """An in-memory ring of samples (newest last), for a daemon without a history file."""

    def __init__(self, limit: int = STATS_LIMIT) -> None:
        self._samples: deque[tuple[int, tuple[float, ...]]] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._samples)

    def record(self, state: MinerState) -> None:
        """Add one sample; its timestamp is milliseconds since the daemon started."""
        self._samples.append((int(max(state.elapsed, 0.0) * 1000), stat_values(state)))

    def rows(self) -> Iterable[tuple[int, Sequence[float]]]:
        return self._samples

    def response(self, columns: str | None, now_ms: int) -> dict[str, object]:
        return statistics_response(self, columns, now_ms)


def statistics_response(
    source: StatisticsSource, columns: str | None, now_ms: int
) -> dict[str, object]:
    """ESP-Miner's shape: labels, then one array per sample with the timestamp last."""
    wanted = [c for c in (columns or "").split(",") if c in STAT_LABELS]
    chosen = [i for i, label in enumerate(STAT_LABELS) if not wanted or label in wanted]
    return {
        "currentTimestamp": now_ms,
        "labels": [STAT_LABELS[i] for i in chosen] + ["timestamp"],
        "statistics": [[values[i] for i in chosen] + [ts] for ts, values in source.rows()],
    }


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True, slots=True)
class _Ctx:
    state: MinerState
    token: Secret | None
    history: StatisticsSource


Handler = Callable[[HttpRequest, _Ctx], "HttpResponse | RestAction"]

_CORS = ("Access-Control-Allow-Origin", "*")


def index_page(state: MinerState) -> str:
    """The honest one-paragraph page (the shell serves the dashboard in its place)."""
    name = html.escape(state.hostname)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{name} - stratum-client (AxeOS-compatible API)</title></head><body>"
        f"<h1>{name}</h1><p>stratum-client {html.escape(state.version)}. "
        f"{NOT_AXEOS} See <a href='/api/system/info'>/api/system/info</a>.</p></body></html>"
    )


NOT_AXEOS = (
    "This is not AxeOS: it is a mining daemon that serves an AxeOS-compatible REST "
    "API, so tools written for Bitaxe boards can read it."
)
"""Every page served at ``/`` carries this sentence (pyasic looks for "AxeOS")."""


def _index(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    return HttpResponse(200, index_page(ctx.state).encode(), "text/html; charset=utf-8")


def _info(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    return json_response(200, system_info(ctx.state), _CORS)


def _asic_route(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    return json_response(200, _asic(ctx.state), _CORS)


def _statistics(request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    now_ms = int(max(ctx.state.elapsed, 0.0) * 1000)
    columns = request.query.get("columns")
    return json_response(200, statistics_response(ctx.history, columns, now_ms), _CORS)


def _write(
    handler: Callable[[HttpRequest, MinerState, Secret | None], HttpResponse | RestAction],
) -> Handler:
    return lambda request, ctx: handler(request, ctx.state, ctx.token)


ROUTES: Mapping[str, Mapping[str, Handler]] = {
    "/": {"GET": _index},
    "/api/system/info": {"GET": _info},
    "/api/system/asic": {"GET": _asic_route},
    "/api/system/statistics": {"GET": _statistics},
    "/api/system": {"PATCH": _write(patch_system)},
    "/api/system/restart": {"POST": _write(post(RestActionKind.RESTART))},
    "/api/system/pause": {"POST": _write(post(RestActionKind.PAUSE))},
    "/api/system/resume": {"POST": _write(post(RestActionKind.RESUME))},
}


def dispatch(
    request: HttpRequest,
    state: MinerState,
    *,
    token: Secret | None,
    history: StatisticsSource,
) -> HttpResponse | RestAction:
    """Route one request. ``HEAD`` is ``GET`` without a body (the shell drops it)."""
    methods = ROUTES.get(request.path)
    if methods is None:
        return error(404, "no such endpoint")
    allow = ", ".join(sorted({*methods, "OPTIONS", *(["HEAD"] if "GET" in methods else [])}))
    if request.method == "OPTIONS":
        return HttpResponse(
            204, b"", headers=(_CORS, ("Allow", allow), ("Access-Control-Allow-Methods", "GET"))
        )
    handler = methods.get("GET" if request.method == "HEAD" else request.method)
    if handler is None:
        return error(405, f"{request.method[:16]} not allowed here", ("Allow", allow))
    return handler(request, _Ctx(state, token, history))
