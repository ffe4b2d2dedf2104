"""A config with several mistakes is reported with all of them, in one run.

The daemon refuses to start with every problem in one message, ``stratum-client check``
lists them one a line, and each names its dotted key and the line it was written on
(counted by hand in the texts below).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum_client.cli import main
from stratum_client.config import load_config, parse_config, parse_pool
from stratum_client.energy.config import parse_energy
from stratum_client.errors import ConfigError

THREE_MISTAKES = """\
[daemon]
log_level = "info"

[[pools]]
url = "stratum+tcp://pool.example.com:3333"
user = "bc1qexample.worker"
pasword = "x"

[[devices]]
driver = "bm1366"
port = "/dev/ttyACM0"
chips = 0

[api]
rest_listen = "nowhere"
"""
"""Line 7: a misspelt key; line 12: a value out of range; line 15: a listen address
without a port."""

EXPECTED = [
    ("pools[0].pasword", 7, "did you mean 'password'"),
    ("devices[0].chips", 12, "out of range"),
    ("api.rest_listen", 15, "no port"),
]


def _fixed() -> str:
    """THREE_MISTAKES with its three mistakes corrected."""
    fixed = THREE_MISTAKES.replace("pasword", "password").replace("chips = 0", "chips = 2")
    return fixed.replace('"nowhere"', '"127.0.0.1:8080"')


def _errors_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value


def test_three_mistakes_are_three_errors_naming_key_and_line() -> None:
    error = _errors_of(THREE_MISTAKES)
    found = [(e.field, e.line) for e in error.errors]
    assert found == [(field, line) for field, line, _ in EXPECTED]
    for single, (_, line, fragment) in zip(error.errors, EXPECTED, strict=True):
        assert fragment in single.problem
        assert str(single).endswith(f"(line {line})")
    assert (error.field, error.problem) == (error.errors[0].field, error.errors[0].problem)
    message = str(error)
    assert message.startswith("3 problems:")
    assert all(field in message for field, _, _ in EXPECTED)


def test_one_mistake_stays_one_error() -> None:
    error = _errors_of(_fixed().replace("log_level", "log_levle"))
    assert error.errors == (error,)
    assert (error.field, error.line) == ("daemon.log_levle", 2)
    assert str(error) == "daemon.log_levle: unknown key; did you mean 'log_level'? (line 2)"


def test_a_missing_key_points_at_its_table_and_the_rest_is_still_read() -> None:
    text = THREE_MISTAKES.replace('user = "bc1qexample.worker"\n', "")
    fields = [(e.field, e.line) for e in _errors_of(text).errors]
    assert fields == [  # listed top to bottom, as in the file
        ("pools[0].user", 4),  # absent: the [[pools]] header
        ("pools[0].pasword", 6),  # one line up: the user line is gone
        ("devices[0].chips", 11),
        ("api.rest_listen", 14),
    ]


def test_errors_from_every_section_are_collected() -> None:
    data = {
        "pools": [
            {"url": "http://x", "user": "u"},
            {"url": "stratum+tcp://a.example:1", "user": "u", "name": "a"},
            {"url": "stratum+tcp://b.example:1", "user": "u", "name": "a"},
        ],
        "devices": [{"driver": "bm1366", "port": "/dev/a", "chips": 1, "frequency_mhz": 0}],
        "pool_policy": {"backoff_initial": 10, "backoff_max": 5},
        "telemetry": {"mqtt": {"port": 0}},
        "energy": {"ledger": {"interval": 0}, "devices": {"ghost": {}}},
    }
    errors = _errors_of_dict(data).errors
    assert [e.field for e in errors] == [
        "pools[0].url",
        "devices[0].frequency_mhz",
        "pools[2].name",
        "pool_policy.backoff_max",
        "telemetry.mqtt.port",
        "energy.devices.ghost",
        "energy.ledger.interval",
    ]
    assert "is already used by [1]" in errors[2].problem


def _errors_of_dict(data: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.line is None  # no text, no lines
    return caught.value


def test_parse_energy_alone_raises_all_of_its_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_energy({"mode": "surplus", "min_dwell": -1, "ledger": {"interval": 0}})
    fields = [e.field for e in caught.value.errors]
    assert fields == ["energy.min_dwell", "energy.signals.surplus", "energy.ledger.interval"]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(THREE_MISTAKES, encoding="utf-8")
    return path


def test_check_command_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path)
    assert main(["check", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"{path}: 3 problems"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [f for f, _, _ in EXPECTED]
    assert [line.rsplit("(line ", 1)[1] for line in lines[1:]] == ["7)", "12)", "15)"]


def test_check_command_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_fixed(), encoding="utf-8")
    assert load_config(path).devices[0].chips == 2
    assert main(["check", "--config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (1 pool(s), 1 device(s))\n"


def test_daemon_refuses_to_start_with_every_problem_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stratum-client run: error: 3 problems:")
    for field, line, fragment in EXPECTED:
        assert f"{field}: " in err
        assert fragment in err
        assert f"(line {line})" in err


def test_a_pool_added_while_running_is_read_like_a_pools_table() -> None:
    table = {"url": "stratum+tcp://pool.example.com:3333", "user": "w", "password": "x"}
    from_file = parse_config({"pools": [table], "devices": [{"driver": "bm1366", "port": "/p",
                                                             "chips": 1}]}).pools[0]  # fmt: skip
    assert parse_pool(table) == from_file
    with pytest.raises(ConfigError) as caught:
        parse_pool({"url": "http://x", "user": "", "pasword": "x"})
    assert [e.field for e in caught.value.errors] == ["pools[0].pasword", "pools[0].url"]


CHAIN_MISTAKES = """\
[[pools]]
url = "stratum+tcp://pool.example.com:3333"
user = "w"

[[devices]]
driver = "bm1366"
port = "/dev/ttyACM0"
chips = 1
options = { ramp_step_dely = 0 }

[[devices]]
driver = "no-such-chip"
port = "/dev/ttyACM1"
chips = 1

[[devices]]
driver = "bm1366"
port = "/dev/ttyACM2"
chips = 1
enabled = false
options = { also_wrong = 1 }
"""
"""A file the schema accepts, with chains the daemon could not start: a driver option
misspelt, a driver not installed; the disabled chain is never started, so not checked."""


def test_check_command_also_checks_what_starting_each_chain_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CHAIN_MISTAKES, encoding="utf-8")
    assert len(load_config(path).devices) == 3
    assert main(["check", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"{path}: 2 problems"
    assert lines[1].startswith("  devices[0] (bm1366-0): ")
    assert "ramp_step_dely" in lines[1]
    assert lines[2].startswith("  devices[1] (no-such-chip-1): ")
    assert "no-such-chip" in lines[2].split(": ", 1)[1]
    assert not any("also_wrong" in line for line in lines)
