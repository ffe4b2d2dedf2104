"""The store that keeps a board's fan and core-voltage settings across restarts.

The file is the truth: what one store writes, a new store over the same directory reads.
A damaged file, a wrong entry or a value the board no longer allows is named in a
warning and skipped; nothing raises, so a bad file never keeps a board down.
"""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from stratum_client.boards.base import BoardLimits, Range
from stratum_client.daemon.board_settings import SETTINGS_FILE, BoardSettingsStore

GAMMA = BoardLimits(core_voltage_v=Range(1.0, 1.3), fan_percent=Range(0.0, 100.0))
NO_VOLTAGE = BoardLimits(fan_percent=Range(0.0, 100.0))


def test_what_one_run_saves_the_next_run_reads(tmp_path: Path) -> None:
    first = BoardSettingsStore(tmp_path)
    first.save("gamma", {"core_voltage_v": 1.25, "fan_percent": None})
    first.save("supra", {"fan_percent": 40.0})
    document = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert document["devices"]["gamma"] == {"core_voltage_v": 1.25, "fan_percent": None}
    again = BoardSettingsStore(tmp_path)
    assert again.settings("gamma", GAMMA) == {"core_voltage_v": 1.25, "fan_percent": None}
    assert again.settings("supra", GAMMA) == {"fan_percent": 40.0}
    assert again.settings("ultra", GAMMA) == {}
    assert [p.name for p in tmp_path.iterdir()] == [SETTINGS_FILE]  # no temporary left


def test_no_file_is_no_settings_and_no_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert BoardSettingsStore(tmp_path / "absent").settings("gamma", GAMMA) == {}
    assert logs == []


def test_a_file_that_is_not_json_is_named_and_ignored(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text('{"devices": {"gamma": ')
    with capture_logs() as logs:
        assert BoardSettingsStore(tmp_path).settings("gamma", GAMMA) == {}
    (warning,) = logs
    assert warning["file"] == str(tmp_path / SETTINGS_FILE)
    assert warning["problem"].startswith("not JSON")


def test_wrong_entries_are_named_and_the_rest_still_apply(tmp_path: Path) -> None:
    devices = {
        "gamma": {"core_voltage_v": "1.2", "fan_percent": 35, "frequency_mhz": 600},
        "supra": [1, 2],
        "ultra": {"core_voltage_v": True, "fan_percent": float("nan")},
    }
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"version": 1, "devices": devices}))
    with capture_logs() as logs:
        store = BoardSettingsStore(tmp_path)
    assert store.settings("gamma", GAMMA) == {"fan_percent": 35.0}
    assert store.settings("supra", GAMMA) == {}
    assert store.settings("ultra", GAMMA) == {}
    problems = sorted(str(e["problem"]) for e in logs)
    assert problems == [
        "devices.gamma.core_voltage_v must be a number, got '1.2'",
        "devices.gamma.frequency_mhz is not a setting this file keeps",
        "devices.supra is not a table",
        "devices.ultra.core_voltage_v must be a number, got True",
        "devices.ultra.fan_percent must be a number, got nan",
    ]


def test_a_value_the_board_does_not_allow_is_skipped(tmp_path: Path) -> None:
    store = BoardSettingsStore(tmp_path)
    store.save("gamma", {"core_voltage_v": 1.5, "fan_percent": 20.0})
    with capture_logs() as logs:
        assert store.settings("gamma", GAMMA) == {"fan_percent": 20.0}
        assert store.settings("gamma", NO_VOLTAGE) == {"fan_percent": 20.0}
    assert [e["setting"] for e in logs if "setting" in e] == ["core_voltage_v", "core_voltage_v"]


def test_a_directory_that_cannot_be_written_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    store = BoardSettingsStore(blocker)
    with capture_logs() as logs:
        store.save("gamma", {"fan_percent": 50.0})
    (error,) = logs
    assert error["log_level"] == "error"
    assert error["file"] == str(blocker / SETTINGS_FILE)
    assert store.settings("gamma", GAMMA) == {"fan_percent": 50.0}  # it still holds
