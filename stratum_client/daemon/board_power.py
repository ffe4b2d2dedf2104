"""A board's measured power as the energy governor's measured-power signal.

The governor already prefers a fresh measurement (a smart plug's signal) to its model,
and the ledger counts such energy as ``measured_kwh``. A board that measures its core
rail (``Sensor.POWER``) gives each chain on it that signal for free: one
:class:`SignalSpec` per such chain, fed from the board's polls at each control step. A
power signal configured in ``[energy]`` for the same chain (a plug at the wall, which
sees the whole board) wins over the board's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from stratum_client.boards.base import Sensor
from stratum_client.boards.errors import BoardError
from stratum_client.boards.registry import load_board
from stratum_client.config import Config
from stratum_client.daemon.boards import BoardChain
from stratum_client.energy.signals import SignalBoard, SignalSpec

__all__ = ["board_power_signals", "board_power_specs", "feed_board_power"]

MIN_AGE: Final = 5.0
"""A board reading older than this many seconds (or 3 polls) is stale to the governor."""


def _signal(chain: str) -> str:
    return f"board-power-{chain}"


def _measuring(config: Config) -> dict[str, float]:
    """Chains on a board that measures power, with their board's poll interval."""
    found: dict[str, float] = {}
    for device in config.devices:
        entry = device.board
        if entry is None or device.name in config.energy.power_signals:
            continue
        try:
            sensors = load_board(entry.spec.board).sensors
        except BoardError:
            continue
        if Sensor.POWER in sensors:
            found[device.name] = entry.safety.poll_interval_s
    return found


def board_power_specs(config: Config) -> list[SignalSpec]:
    """Signal specs for the chains whose board measures power (none else)."""
    base = config.telemetry.mqtt.base_topic.rstrip("/")
    return [
        SignalSpec(
            _signal(name), f"{base}/device/{name}/board_power_w", max_age=max(MIN_AGE, 3 * poll)
        )
        for name, poll in _measuring(config).items()
    ]


def board_power_signals(config: Config) -> dict[str, str]:
    """Chain name → its board's power signal, for the governor's ``power_signals``."""
    return {name: _signal(name) for name in _measuring(config)}


def feed_board_power(
    signals: SignalBoard, boards: Mapping[str, BoardChain], now: float, fed: dict[str, float]
) -> None:
    """Hand each board's newest power reading to ``signals`` (once per poll: ``fed`` keeps
    the poll time last handed over, so an old reading never looks fresh)."""
    for name, chain in boards.items():
        status, signal = chain.status, _signal(name)
        if status is None or status.readings is None or not signals.configured(signal):
            continue
        readings = status.readings
        if not readings.power_w.ok or fed.get(name) == readings.at:
            continue
        fed[name] = readings.at
        signals.update(signal, repr(readings.power_w.value).encode(), now)
