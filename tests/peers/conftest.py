"""What the real-peer test needs, read from the ``--real-pool`` options (tests/conftest.py).

A missing value fails the test with what to pass: the test only runs when asked for, so
nothing is ever skipped quietly.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import pytest

DEFAULT_DURATION = 60.0
_MARGIN = 180.0
"""Seconds allowed past the mining time: start-up, the drain and the RPC checks."""


@dataclass(frozen=True, slots=True)
class Peers:
    """Where the peers are and how long to mine."""

    pool_url: str
    rpc_url: str
    address: str
    duration: float
    submit_below: bool


def _duration(config: pytest.Config) -> float:
    value = config.getoption("--real-pool-duration")
    try:
        duration = DEFAULT_DURATION if value is None else float(value)
    except ValueError:
        raise pytest.UsageError(f"--real-pool-duration: {value!r} is not seconds") from None
    if not duration > 0:
        raise pytest.UsageError(f"--real-pool-duration: {value!r} must be positive")
    return duration


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite's 120 s timeout would cut a run short: allow the duration plus a margin."""
    limit = _duration(config) + _MARGIN
    for item in items:
        item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture
def peers(request: pytest.FixtureRequest) -> Peers:
    config = request.config
    missing = [
        f"{option} (or env {env})"
        for option, env in (
            ("--pool-url", "REAL_POOL_URL"),
            ("--bitcoind-rpc", "REAL_POOL_RPC"),
            ("--payout-address", "REAL_POOL_ADDRESS"),
        )
        if not config.getoption(option)
    ]
    if missing:
        pytest.fail(f"the real-pool test needs {', '.join(missing)}", pytrace=False)
    rpc = str(config.getoption("--bitcoind-rpc"))
    parts = urllib.parse.urlsplit(rpc)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
        pytest.fail(
            f"--bitcoind-rpc {rpc!r}: expected http://user:password@host:port", pytrace=False
        )
    return Peers(
        pool_url=str(config.getoption("--pool-url")),
        rpc_url=rpc,
        address=str(config.getoption("--payout-address")),
        duration=_duration(config),
        submit_below=bool(config.getoption("--submit-below-difficulty")),
    )
