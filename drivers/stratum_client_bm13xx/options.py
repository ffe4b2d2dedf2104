"""The ``[devices.options]`` keys of the BM13xx driver, validated, and the baud plan.

Kept apart from the driver so that the checks a config error depends on read on their
own: every bad option is a :class:`DriverError` naming the port, the key and the bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from stratum_client.errors import DriverError

from . import fastbaud
from .chips import ChipModel

__all__ = ["DriverOptions", "baud_plan", "parse_options"]


@dataclass(frozen=True, slots=True)
class DriverOptions:
    """The ``[devices.options]`` keys this driver understands."""

    ramp_step_delay: float = 0.1
    """Seconds between 6.25 MHz PLL steps (lets the core supply follow)."""
    enumerate_quiet: float = 0.2
    """Seconds without a new chip-id reply that end enumeration."""
    baud: int | None = None
    """Chain baud rate after init; ``None`` = the model's fastest, 0 = stay at 115 200."""
    initial_mhz: float = 50.0
    """Frequency the chips are assumed to run at after power-up (start of the ramp)."""
    bridge: str | None = None
    """USB-serial bridge in front of the chips (``"ft230x"``, ``"native"``); ``None``:
    recognised from the port's USB VID:PID, else treated as a native UART."""


def _number(port: str, key: str, value: object, minimum: float, inclusive: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not (value >= minimum if inclusive else value > minimum)
    ):
        bound = f"≥ {minimum:g}" if inclusive else f"> {minimum:g}"
        raise DriverError(f"{port}: option {key!r} must be a number {bound}, got {value!r}")
    return float(value)


def parse_options(port: str, options: Mapping[str, object]) -> DriverOptions:
    """Validate ``spec.options``; an unknown key or a wrong type is a DriverError naming it."""
    if not isinstance(options, Mapping):
        raise DriverError(f"{port}: driver options must be a table, got {options!r}")
    known = {f.name for f in fields(DriverOptions)}
    unknown = sorted(str(key) for key in options if key not in known)
    if unknown:
        raise DriverError(
            f"{port}: unknown driver option {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    default = DriverOptions()

    def number(key: str, inclusive: bool) -> float:
        return _number(port, key, options.get(key, getattr(default, key)), 0.0, inclusive)

    return DriverOptions(
        ramp_step_delay=number("ramp_step_delay", inclusive=True),
        enumerate_quiet=number("enumerate_quiet", inclusive=False),
        baud=_baud_option(port, options.get("baud")),
        initial_mhz=number("initial_mhz", inclusive=False),
        bridge=_bridge_option(port, options.get("bridge")),
    )


def _bridge_option(port: str, value: object) -> str | None:
    known = (*sorted(fastbaud.BRIDGES), fastbaud.NATIVE)
    if value is None or value in known:
        return None if value is None else str(value)
    raise DriverError(f"{port}: option 'bridge' must be one of {', '.join(known)}, got {value!r}")


def _baud_option(port: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DriverError(f"{port}: option 'baud' must be an integer ≥ 0, got {value!r}")
    return value


def baud_plan(model: ChipModel, port: str, requested: int | None) -> tuple[bytes | None, int]:
    """The register write that switches the chips, and the rate the host then uses.

    Without a known bridge the host follows the chip's exact rate; see
    :func:`~.fastbaud.plan_baud` for the choice that honours the serial bridge.
    """
    plan = fastbaud.plan_baud(model, port, requested, None)
    return plan.frame, plan.host_baud
