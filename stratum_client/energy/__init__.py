"""Clean-energy mining: follow solar surplus, carbon intensity and price; keep a ledger.

The pieces, from the outside in::

    MQTT ──► mqtt_signals.SignalSubscriber ──► signals.SignalBoard   (values + staleness)
                                                      │
    config.parse_energy ──► governor.Governor.step(now, board) ──► Decision
                                                      │                 │
                               the daemon applies changes   intervals.IntervalAccumulator
                               (frequency ramp, pause)                  │
                                                                 ledger.Ledger (SQLite)

Everything except ``mqtt_signals`` and ``Ledger`` is sans-IO: time is an argument.
"""

from __future__ import annotations

from stratum_client.energy.config import (
    DeviceEnergyConfig,
    EnergyConfig,
    LedgerConfig,
    parse_energy,
)
from stratum_client.energy.governor import (
    Decision,
    DeviceDecision,
    Governor,
    Policy,
    SurplusPolicy,
    ThresholdPolicy,
)
from stratum_client.energy.intervals import IntervalAccumulator, LedgerRow
from stratum_client.energy.ledger import Ledger, Totals
from stratum_client.energy.power import ChipPower, DevicePower, PowerSample, calibrate
from stratum_client.energy.signals import SignalBoard, SignalError, SignalSpec, SignalUpdate

__all__ = [
    "ChipPower",
    "Decision",
    "DeviceDecision",
    "DeviceEnergyConfig",
    "DevicePower",
    "EnergyConfig",
    "Governor",
    "IntervalAccumulator",
    "Ledger",
    "LedgerConfig",
    "LedgerRow",
    "Policy",
    "PowerSample",
    "SignalBoard",
    "SignalError",
    "SignalSpec",
    "SignalUpdate",
    "SurplusPolicy",
    "ThresholdPolicy",
    "Totals",
    "calibrate",
    "parse_energy",
]
