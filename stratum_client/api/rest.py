"""An AxeOS-compatible REST API without I/O: request head and body in, response out.

Bitaxe dashboards, exporters and pyasic poll ``GET /api/system/info`` on ESP-Miner
firmware (AxeOS). Serving the same paths, field names and units lets those tools watch a
daemon that drives the same BM13xx chips. The daemon may run several chains; AxeOS
describes one board, so figures are summed (hashrate, chips, power, shares) or
chip-weighted averages (frequency, temperature, voltage), and the model and core count
are those of the first device.

``GET /`` says in plain words that this is *not* AxeOS, but the page contains the word
"AxeOS", which is what pyasic's ``get_miner`` looks for to pick its Bitaxe backend.
Values the daemon cannot know (input voltage and current, fans, VR temperature) are 0, as
ESP-Miner shows on boards without the sensor; AxeOS never sends ``null``.

Writes (``PATCH /api/system`` for the frequency, ``POST /api/system/restart|pause|resume``)
exist only when a token is configured and need ``Authorization: Bearer <token>``; they
come back from :func:`dispatch` as a :class:`RestAction` for the shell to run.
"""

from __future__ import annotations

import enum
import hmac
import html
import json
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlsplit

from stratum_client.api.board_fields import axeos_board_fields
from stratum_client.api.model import ControlOutcome, DeviceState, MinerState, PoolStatus
from stratum_client.secrets import Secret
from stratum_client.units import GIGA, in_unit
from stratum_client_bm13xx.chips import MODELS

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "STAT_LABELS",
    "HttpRequest",
    "HttpResponse",
    "RestAction",
    "RestActionKind",
    "StatisticsHistory",
    "action_response",
    "dispatch",
    "error",
    "format_difficulty",
    "parse_head",
    "system_info",
    "with_body",
]

MAX_HEAD = 8192
MAX_BODY = 4096
MAX_HEADERS = 64
MAX_QUERY_FIELDS = 16
STATS_LIMIT = 720
"""ESP-Miner keeps this many statistics samples."""
MAX_MHZ = 2000.0

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed request; header names are lower-case, repeated headers keep the last."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: int = 0
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, *, head_only: bool = False) -> bytes:
        """The full HTTP/1.1 message; every response closes the connection."""
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


def _json(status: int, payload: object, *headers: tuple[str, str]) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return HttpResponse(status, body, headers=headers)


def error(status: int, message: str, *headers: tuple[str, str]) -> HttpResponse:
    """A JSON error body: ``{"error": message}``."""
    return _json(status, {"error": message}, *headers)


# --------------------------------------------------------------------------- parsing


def parse_head(data: bytes) -> HttpRequest | HttpResponse:
    """Parse the request line and headers (everything up to the blank line).

    Strict on purpose: no obsolete line folding, no ``Transfer-Encoding`` (the API has
    no use for chunked uploads, and refusing it closes off request smuggling), one
    ``Content-Length`` of at most :data:`MAX_BODY`.
    """
    if len(data) > MAX_HEAD:
        return error(431, "request head too large")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return error(400, "request head is not ASCII")
    lines = text.rstrip("\r\n").split("\r\n")
    line = _request_line(lines[0])
    if isinstance(line, HttpResponse):
        return line
    headers = _headers(lines[1:])
    if isinstance(headers, HttpResponse):
        return headers
    method, target = line
    return _request(method, target, headers)


def _request_line(line: str) -> tuple[str, str] | HttpResponse:
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        return error(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        return error(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    if not target.startswith("/") or not target.isprintable():
        return error(400, "request target must be a path")
    return method, target


def _headers(lines: Sequence[str]) -> dict[str, str] | HttpResponse:
    if len(lines) > MAX_HEADERS:
        return error(431, "too many header fields")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            return error(400, "malformed header field")
        key = name.lower()
        value = value.strip(" \t")
        if key == "content-length" and headers.get(key, value) != value:
            return error(400, "conflicting Content-Length")
        headers[key] = value
    return headers


def _request(method: str, target: str, headers: Mapping[str, str]) -> HttpRequest | HttpResponse:
    if "transfer-encoding" in headers:
        return error(501, "Transfer-Encoding is not supported")
    length_text = headers.get("content-length", "0")
    if not length_text.isascii() or not length_text.isdigit() or len(length_text) > 9:
        return error(400, "invalid Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        return error(413, f"request body over {MAX_BODY} bytes")
    path, _, query_text = target.partition("?")
    try:
        query = dict(parse_qsl(query_text, max_num_fields=MAX_QUERY_FIELDS))
    except ValueError:
        return error(400, "too many query parameters")
    return HttpRequest(method, path, query, headers, length)


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
    model = MODELS.get(device.model.upper())
    return model.small_cores if model else 0


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


def _info_board(state: MinerState) -> dict[str, object]:
    first = state.devices[0] if state.devices else None
    return {
        "ASICModel": first.model if first else "",
        "asicCount": sum(device.chips for device in state.devices),
        "smallCoreCount": _small_cores(first) if first else 0,
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
    model = MODELS.get(first.model.upper()) if first else None
    current = sorted({round(d.frequency_mhz) for d in state.devices})
    default_mhz = round(model.default_mhz) if model else 0
    return {
        "ASICModel": first.model if first else "",
        "deviceModel": "stratum-client",
        "asicCount": sum(device.chips for device in state.devices),
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


class StatisticsHistory:
    """The ring of samples behind ``GET /api/system/statistics`` (newest last)."""

    def __init__(self, limit: int = STATS_LIMIT) -> None:
        self._samples: deque[tuple[int, tuple[float, ...]]] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._samples)

    def record(self, state: MinerState) -> None:
        """Add one sample; its timestamp is milliseconds since the daemon started."""
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
        numbers = tuple(float(v) if isinstance(v, int | float) else 0.0 for v in values)
        self._samples.append((int(max(state.elapsed, 0.0) * 1000), numbers))

    def response(self, columns: str | None, now_ms: int) -> dict[str, object]:
        """ESP-Miner's shape: labels, then one array per sample with the timestamp last."""
        wanted = [c for c in (columns or "").split(",") if c in STAT_LABELS]
        chosen = [i for i, label in enumerate(STAT_LABELS) if not wanted or label in wanted]
        return {
            "currentTimestamp": now_ms,
            "labels": [STAT_LABELS[i] for i in chosen] + ["timestamp"],
            "statistics": [[values[i] for i in chosen] + [ts] for ts, values in self._samples],
        }


# --------------------------------------------------------------------------- routing


class RestActionKind(enum.StrEnum):
    SET_FREQUENCY = "set_frequency"
    RESTART = "restart"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class RestAction:
    """An authorised write for the shell to run against ``MinerControl``."""

    kind: RestActionKind
    mhz: float = 0.0
    devices: tuple[str, ...] = ()

    @property
    def replies_first(self) -> bool:
        return self.kind is RestActionKind.RESTART


@dataclass(frozen=True, slots=True)
class _Ctx:
    state: MinerState
    token: Secret | None
    history: StatisticsHistory


Handler = Callable[[HttpRequest, _Ctx], "HttpResponse | RestAction"]

_CORS = ("Access-Control-Allow-Origin", "*")


def _index_page(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    name = html.escape(ctx.state.hostname)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{name} - stratum-client (AxeOS-compatible API)</title></head><body>"
        f"<h1>{name}</h1><p>stratum-client {html.escape(ctx.state.version)}. "
        "This is not AxeOS: it is a mining daemon that serves an AxeOS-compatible REST "
        "API, so tools written for Bitaxe boards can read it. See "
        "<a href='/api/system/info'>/api/system/info</a>.</p></body></html>"
    )
    return HttpResponse(200, page.encode(), "text/html; charset=utf-8")


def _info(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    return _json(200, system_info(ctx.state), _CORS)


def _asic_route(_request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    return _json(200, _asic(ctx.state), _CORS)


def _statistics(request: HttpRequest, ctx: _Ctx) -> HttpResponse:
    now_ms = int(max(ctx.state.elapsed, 0.0) * 1000)
    return _json(200, ctx.history.response(request.query.get("columns"), now_ms), _CORS)


def _authorised(request: HttpRequest, token: Secret | None) -> HttpResponse | None:
    """``None`` when the bearer token matches; else the 403/401 to send."""
    if token is None:
        return error(403, "read-only API: configure api.rest_token to allow changes")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.reveal().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return error(401, "missing or wrong bearer token", ("WWW-Authenticate", "Bearer"))
    return None


def _settings(body: bytes) -> dict[str, object] | HttpResponse:
    try:
        decoded = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return error(400, "body is not valid JSON")
    if not isinstance(decoded, dict):
        return error(400, "body must be a JSON object")
    return decoded


def _patch_system(request: HttpRequest, ctx: _Ctx) -> HttpResponse | RestAction:
    denied = _authorised(request, ctx.token)
    if denied is not None:
        return denied
    settings = _settings(request.body)
    if isinstance(settings, HttpResponse):
        return settings
    unsupported = sorted(key[:32] for key in settings if key != "frequency")
    if unsupported:
        return error(400, f"unsupported setting(s): {', '.join(unsupported[:8])}")
    mhz = settings.get("frequency")
    if isinstance(mhz, bool) or not isinstance(mhz, int | float) or not 1 <= mhz <= MAX_MHZ:
        return error(400, f"frequency must be a number of MHz from 1 to {MAX_MHZ:g}")
    names = tuple(device.name for device in ctx.state.devices)
    if not names:
        return error(400, "no devices to set")
    return RestAction(RestActionKind.SET_FREQUENCY, float(mhz), names)


def _post(kind: RestActionKind) -> Handler:
    def handler(request: HttpRequest, ctx: _Ctx) -> HttpResponse | RestAction:
        return _authorised(request, ctx.token) or RestAction(kind)

    return handler


ROUTES: Mapping[str, Mapping[str, Handler]] = {
    "/": {"GET": _index_page},
    "/api/system/info": {"GET": _info},
    "/api/system/asic": {"GET": _asic_route},
    "/api/system/statistics": {"GET": _statistics},
    "/api/system": {"PATCH": _patch_system},
    "/api/system/restart": {"POST": _post(RestActionKind.RESTART)},
    "/api/system/pause": {"POST": _post(RestActionKind.PAUSE)},
    "/api/system/resume": {"POST": _post(RestActionKind.RESUME)},
}


def dispatch(
    request: HttpRequest,
    state: MinerState,
    *,
    token: Secret | None,
    history: StatisticsHistory,
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


def action_response(action: RestAction, outcomes: Sequence[ControlOutcome]) -> HttpResponse:
    """200 when every call succeeded; 400 if the daemon refused the request, else 500."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed:
        status = 400 if all(outcome.rejected for outcome in failed) else 500
        return error(status, "; ".join(outcome.error or "failed" for outcome in failed))
    if action.kind is RestActionKind.SET_FREQUENCY:
        reached = {
            name: outcome.value for name, outcome in zip(action.devices, outcomes, strict=True)
        }
        return _json(200, {"message": "frequency set", "frequency": reached})
    messages = {
        RestActionKind.RESTART: "System will restart shortly.",
        RestActionKind.PAUSE: "Mining paused.",
        RestActionKind.RESUME: "Mining resumed.",
    }
    return _json(200, {"message": messages[action.kind]})


def with_body(request: HttpRequest, body: bytes) -> HttpRequest:
    """The request with its body attached (the shell reads it after the head)."""
    return replace(request, body=body)
