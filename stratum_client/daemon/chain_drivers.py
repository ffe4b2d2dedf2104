"""Which configured chains can run: their driver classes, and why the others cannot.

A missing driver is an installation problem no retry can fix, so those chains are
reported and skipped; the daemon refuses to start only when no chain is left.
"""

from __future__ import annotations

import structlog

from stratum_client.asic.base import AsicDriver
from stratum_client.asic.registry import load_driver
from stratum_client.config import DeviceConfig
from stratum_client.errors import DriverError

__all__ = ["resolve_drivers"]

_log = structlog.get_logger(__name__)


def resolve_drivers(
    devices: tuple[DeviceConfig, ...],
) -> tuple[list[tuple[DeviceConfig, type[AsicDriver]]], tuple[tuple[str, str], ...]]:
    """Driver classes of the enabled devices, and ``(name, why)`` of the ones left out."""
    found: list[tuple[DeviceConfig, type[AsicDriver]]] = []
    missing: list[tuple[str, str]] = []
    for device in devices:
        if not device.enabled:
            continue
        try:
            found.append((device, load_driver(device.driver)))
        except DriverError as exc:
            _log.error("chain left out: driver unavailable", chain=device.name, error=str(exc))
            missing.append((device.name, str(exc)))
    if not found:
        reasons = "; ".join(f"{name}: {why}" for name, why in missing) or "none enabled"
        raise DriverError(f"no chain can run ({reasons})")
    return found, tuple(missing)
