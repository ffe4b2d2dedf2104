"""What the daemon shows to monitoring tools: the cgminer API and an AxeOS-style REST API.

Both read :class:`~stratum_client.api.model.MinerState` snapshots and act only through
:class:`~stratum_client.api.model.MinerControl`; the protocol work happens in sans-IO
cores (:mod:`.cgminer`, :mod:`.rest`) behind thin asyncio servers.
"""

from __future__ import annotations

from stratum_client.api.cgminer_server import CgminerServer
from stratum_client.api.model import (
    ChipState,
    ControlOutcome,
    DeviceState,
    DeviceStatus,
    Hashrate,
    MinerControl,
    MinerState,
    MiningState,
    StateProvider,
)
from stratum_client.api.rest_server import RestServer

__all__ = [
    "CgminerServer",
    "ChipState",
    "ControlOutcome",
    "DeviceState",
    "DeviceStatus",
    "Hashrate",
    "MinerControl",
    "MinerState",
    "MiningState",
    "RestServer",
    "StateProvider",
]
