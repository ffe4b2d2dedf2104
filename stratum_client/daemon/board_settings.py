"""Fan and core-voltage settings made through the APIs, kept across restarts.

A board's fan duty and core voltage can be set at run time (REST ``PATCH /api/system``,
MQTT ``set_fan`` / ``set_core_voltage``, cgminer ``ascset``). Tools written for AxeOS
expect such a setting to outlive a restart, so each change is written to
``board-settings.json`` in ``[daemon] state_dir`` and applied over the config file's
values at the next start. The file is small JSON written atomically (temporary file,
then rename), so a crash mid-write leaves the previous version.

A file that cannot be read or holds something other than the expected numbers is not
a reason to stay down: the problem is logged with the file's name, the entries that are
wrong are ignored (a board then starts on its config values) and the rest still apply.
A stored value outside the board's limits (the board in the table was changed) is
ignored the same way. JSON's own ``json`` module is all this needs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Final

import structlog

from stratum_client.boards.base import BoardLimits

__all__ = ["SETTINGS_FILE", "BoardSettingsStore", "Settings"]

SETTINGS_FILE: Final = "board-settings.json"
_VERSION: Final = 1
_KEYS: Final = ("fan_percent", "core_voltage_v")
"""The ``BoardSpec`` fields an API write changes (``fan_percent`` None: the PID drives)."""

Settings = dict[str, float | None]

_log = structlog.get_logger(__name__)


class BoardSettingsStore:
    """The API settings of every board, by ``[[devices]]`` name, in one JSON file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SETTINGS_FILE
        self._devices: dict[str, Settings] = self._load()

    def settings(self, device: str, limits: BoardLimits) -> Settings:
        """What was set for ``device`` before, minus values its board does not allow."""
        kept: Settings = {}
        for key, value in self._devices.get(device, {}).items():
            allowed = getattr(limits, key)
            if allowed is None or (value is not None and value not in allowed):
                _log.warning(
                    "stored board setting outside the board's limits; ignored",
                    file=str(self.path), device=device, setting=key, value=value,
                )  # fmt: skip
                continue
            kept[key] = value
        if kept:
            _log.info("board settings from an earlier run", device=device, **kept)
        return kept

    def save(self, device: str, settings: Settings) -> None:
        """Record ``device``'s settings; a failed write is logged, the setting still holds."""
        self._devices[device] = dict(settings)
        document = {"version": _VERSION, "devices": self._devices}
        tmp_name = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".board-settings-", delete=False
            ) as tmp:
                tmp_name = tmp.name
                json.dump(document, tmp, indent=2, sort_keys=True)
                tmp.write("\n")
                tmp.flush()
                os.fsync(tmp.fileno())  # the rename must not land before the bytes
            os.replace(tmp_name, self.path)
        except OSError as exc:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
            _log.error("cannot keep board settings for the next start",
                       file=str(self.path), error=str(exc))  # fmt: skip

    def _load(self) -> dict[str, Settings]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._bad(f"cannot read it ({exc.strerror or exc})")
            return {}
        try:
            document = json.loads(text)
        except ValueError as exc:
            self._bad(f"not JSON ({exc})")
            return {}
        devices = document.get("devices") if isinstance(document, dict) else None
        if not isinstance(devices, dict):
            self._bad('no "devices" table')
            return {}
        return {name: self._entry(name, entry) for name, entry in devices.items()}

    def _entry(self, device: str, entry: Any) -> Settings:
        if not isinstance(entry, dict):
            self._bad(f"devices.{device} is not a table")
            return {}
        kept: Settings = {}
        for key, value in entry.items():
            if key not in _KEYS:
                self._bad(f"devices.{device}.{key} is not a setting this file keeps")
            elif value is None and key == "fan_percent":
                kept[key] = None
            elif (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and (math.isfinite(value))
            ):
                kept[key] = float(value)
            else:
                self._bad(f"devices.{device}.{key} must be a number, got {value!r}")
        return kept

    def _bad(self, problem: str) -> None:
        _log.warning("board settings file ignored in part", file=str(self.path), problem=problem)
