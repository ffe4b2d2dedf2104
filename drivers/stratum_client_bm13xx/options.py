"""The ``[devices.options]`` keys of the BM13xx driver, validated, and the baud plan.

Kept apart from the driver so that the checks a config error depends on read on their
own: every bad option is a :class:`DriverError` naming the port, the key and the bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from stratum_client.asic.transport import INITIAL_BAUDRATE
from stratum_client.errors import DriverError

from . import frames, registers
from .chips import ChipModel
from .registers import Reg, Send, SetHostBaud

__all__ = ["DriverOptions", "baud_plan", "parse_options"]

_BAUD_TOLERANCE: Final = 0.05
"""How far a requested BM1397 baud rate may be from the nearest divider's rate."""


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
    )


def _baud_option(port: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DriverError(f"{port}: option 'baud' must be an integer ≥ 0, got {value!r}")
    return value


def baud_plan(model: ChipModel, port: str, requested: int | None) -> tuple[bytes | None, int]:
    """The register write that switches the chips, and the rate the host then uses."""
    if requested in (0, INITIAL_BAUDRATE):
        return None, INITIAL_BAUDRATE
    send, host = registers.max_baud_steps(model)
    if not (isinstance(send, Send) and isinstance(host, SetHostBaud)):
        raise DriverError(f"{model.name}: the codec's baud switch has an unknown layout")
    if requested is None or requested == host.baud:
        return send.frame, host.baud
    if not model.full_header:
        # The host then runs at the chip's exact rate, so only the request is approximate.
        value = min(
            (bytes((0, 0, 0x60 | divider, 0x31)) for divider in range(32)),
            key=lambda v: abs(registers.misc_control_baud(v) - requested),
        )
        rate = registers.misc_control_baud(value)
        if abs(rate - requested) <= requested * _BAUD_TOLERANCE:
            return frames.write_register(Reg.MISC_CONTROL, value), rate
    raise DriverError(
        f"{port}: option 'baud' = {requested} is not a rate the {model.name} can be set to "
        f"(use 0 to stay at {INITIAL_BAUDRATE}, or {host.baud})"
    )
