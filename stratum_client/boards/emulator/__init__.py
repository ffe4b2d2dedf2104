"""Emulated boards: a Bitaxe's bitaxe-raw control port and its chip chain on ptys.

* :mod:`.models` – TPS546, EMC2101, DS4432U and INA260 register models (sans-IO)
* :mod:`.thermal` – the first-order thermal model (pure)
* :mod:`.faults` – what a test can break: fan, sensors, regulator, ambient
* :mod:`.board` – :class:`EmulatedBitaxe`, the bridge firmware and its bus (sans-IO)
* :mod:`.chain` – the BM13xx emulator chain, gated on the board's power and reset
* :mod:`.server` – :class:`BoardEmulator`, the asyncio shell on two ptys

Run one with ``python -m stratum_client.boards.emulator --board bitaxe-gamma``. The server
is not imported here, so the sans-IO parts load without asyncio.
"""

from .board import PROFILES, BoardProfile, EmulatedBitaxe, TrafficEntry
from .faults import BoardFaults, SensorFault
from .thermal import ThermalModel, ThermalParams

__all__ = [
    "PROFILES",
    "BoardFaults",
    "BoardProfile",
    "EmulatedBitaxe",
    "SensorFault",
    "ThermalModel",
    "ThermalParams",
    "TrafficEntry",
]
