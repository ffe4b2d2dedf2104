"""The systemd unit: `systemd-analyze verify` accepts it and it keeps its key settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stratum_client.config import DEFAULT_CONFIG_PATH

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "configs" / "stratum-client.service"
INSTALLED_BINARY = "/usr/local/bin/stratum-client"


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze") or (
        "/usr/bin/systemd-analyze" if Path("/usr/bin/systemd-analyze").exists() else None
    )
    if found is None:
        pytest.fail(
            "systemd-analyze is not installed; the service unit cannot be verified. "
            "Install systemd (apt-get install systemd) to run this test."
        )
    return found


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_systemd_analyze(), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _copy_with_runnable_exec(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at a binary that exists on this machine.

    verify refuses a unit whose ExecStart binary is missing, and the test machine has
    the package installed in a virtualenv rather than in /usr/local/bin.
    """
    binary = shutil.which("stratum-client") or "/bin/true"
    content = (UNIT.read_text() if text is None else text).replace(INSTALLED_BINARY, binary)
    target = tmp_path / "stratum-client.service"
    target.write_text(content)
    return target


def _directives() -> list[tuple[str, str, str]]:
    """``(section, key, value)`` for every assignment, duplicates kept in order."""
    section = ""
    found: list[tuple[str, str, str]] = []
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def _values(section: str, key: str) -> list[str]:
    return [v for s, k, v in _directives() if s == section and k == key]


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = _verify(_copy_with_runnable_exec(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes")
    result = _verify(_copy_with_runnable_exec(tmp_path, broken))
    assert "sometimes" in result.stderr


def test_exec_start_runs_the_daemon_with_the_default_config() -> None:
    assert _values("Service", "ExecStart") == [
        f"{INSTALLED_BINARY} run --config {DEFAULT_CONFIG_PATH}"
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("WatchdogSec", "30"),
        ("Restart", "on-failure"),
        ("RestartSec", "5"),
        ("RestartForceExitStatus", "75"),  # the daemon's EXIT_RESTART
        ("SuccessExitStatus", "75"),
        ("TimeoutStopSec", "20"),
        ("KillSignal", "SIGTERM"),
        ("User", "stratum-client"),
        ("Group", "stratum-client"),
        ("SupplementaryGroups", "dialout"),
        ("StateDirectory", "stratum-client"),
        ("ConfigurationDirectory", "stratum-client"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("DevicePolicy", "closed"),
    ],
)
def test_service_setting(key: str, value: str) -> None:
    assert _values("Service", key) == [value]


def test_only_serial_devices_are_allowed() -> None:
    assert _values("Service", "DeviceAllow") == ["char-ttyUSB rw", "char-ttyACM rw"]


def test_installed_for_multi_user_target() -> None:
    assert _values("Install", "WantedBy") == ["multi-user.target"]
