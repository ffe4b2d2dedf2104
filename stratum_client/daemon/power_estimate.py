"""Each chain's modelled power draw, for the APIs' power figures.

From the ``[energy]`` power figures of the chain's chip model (see docs/energy.md):
hashing at the frequency it runs at, the idle figure while paused, nothing while down.
The model is built once per chain; a chain without figures has no estimate (None).
"""

from __future__ import annotations

import structlog

from stratum_client.config import DeviceConfig
from stratum_client.daemon.chain import ChainState, ChainStatus
from stratum_client.energy.config import EnergyConfig
from stratum_client.energy.power import DevicePower
from stratum_client.errors import StratumClientError

__all__ = ["PowerEstimates"]

_log = structlog.get_logger(__name__)


class PowerEstimates:
    """Modelled watts per chain, with each chain's power model cached."""

    def __init__(self, energy: EnergyConfig) -> None:
        self._energy = energy
        self._models: dict[str, DevicePower | None] = {}

    def watts(
        self, status: ChainStatus, device: DeviceConfig | None, model: str, mhz: float
    ) -> float | None:
        """Modelled draw: hashing at ``mhz``, the idle figure when paused, 0 when down."""
        power = self._model(status.name, device, model)
        if power is None:
            return None
        if status.state is ChainState.RUNNING:
            return power.watts(mhz)
        if status.state is ChainState.PAUSED:
            return power.idle_watts
        return 0.0

    def _model(self, name: str, device: DeviceConfig | None, model: str) -> DevicePower | None:
        if name not in self._models:
            power: DevicePower | None = None
            if device is not None:
                try:
                    power = self._energy.device_power(
                        name, model, device.chips, device.frequency_mhz
                    )
                except StratumClientError as exc:
                    _log.info("no power estimate for chain", chain=name, reason=str(exc))
            self._models[name] = power
        return self._models[name]
