"""What the energy service reports: each control step, the governor's state, the ledger.

Pure functions of what the service saw, so the JSON published on MQTT (retained, under
``energy/state`` and ``energy/ledger``) is built in one place and can be read on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from stratum_client.daemon.app import DaemonSnapshot
from stratum_client.daemon.chain import ChainStatus
from stratum_client.energy.intervals import LedgerRow
from stratum_client.energy.policy import Decision, DeviceDecision, Policy
from stratum_client.energy.signals import SignalStatus

__all__ = ["StepRecord", "governor_state", "ledger_payload"]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One control step as the service saw and applied it (for observers and tests)."""

    now: float
    """Governor clock (scaled monotonic seconds)."""
    wall: float
    """Ledger clock (scaled Unix seconds)."""
    decision: Decision
    snapshot: DaemonSnapshot
    """Taken just before the decision was applied."""

    @property
    def power_w(self) -> float:
        """The miners' total draw as the governor decided it."""
        return sum(d.power_w for d in self.decision.per_device.values())


def governor_state(
    policy: Policy,
    record: StepRecord | None,
    chains: Mapping[str, ChainStatus],
    signals: Mapping[str, SignalStatus],
    *,
    broker: str,
    ledger: Path | None,
    ledger_problem: str | None,
    problem: str | None,
) -> dict[str, object]:
    """The state document: policy, the last decision per device with its chain, signals."""
    decision = record.decision if record else None
    per_device = decision.per_device if decision else {}
    return {
        "mode": policy.label,
        "fail_safe": policy.fail_safe,
        "fail_safe_engaged": decision.fail_safe_engaged if decision else None,
        "fail_safe_reason": decision.fail_safe_reason if decision else None,
        "surplus_w": decision.surplus_w if decision else None,
        "carbon_intensity": decision.carbon_intensity if decision else None,
        "power_w": round(record.power_w, 3) if record else None,
        "devices": {name: _device(want, chains.get(name)) for name, want in per_device.items()},
        "signals": {
            name: {
                "state": s.state,
                "value": s.value,
                "age_s": None if s.age is None else round(s.age, 1),
                "problem": s.problem,
            }
            for name, s in signals.items()
        },
        "broker": broker,
        "ledger": str(ledger) if ledger else None,
        "ledger_problem": ledger_problem,
        "problem": problem,
    }


def _device(want: DeviceDecision, chain: ChainStatus | None) -> dict[str, object]:
    return {
        "run": want.run,
        "frequency_mhz": want.frequency_mhz,
        "power_w": round(want.power_w, 3),
        "measured": want.measured,
        "reason": want.reason,
        "state": str(chain.state) if chain else None,
        "paused_by": list(chain.paused_by) if chain else [],
        "chip_frequency_mhz": chain.frequency_mhz if chain else None,
    }


def ledger_payload(rows: list[LedgerRow]) -> bytes:
    """The closed interval(s): every row, and their sums (JSON)."""
    summed = ("energy_kwh", "surplus_kwh", "grid_kwh", "carbon_g", "shares", "hashes")
    total: Mapping[str, float] = {key: sum(getattr(row, key) for row in rows) for key in summed}
    body = {
        "start": min(row.start for row in rows),
        "end": max(row.end for row in rows),
        "total": dict(total),
        "devices": [asdict(row) for row in rows],
    }
    return json.dumps(body).encode()
