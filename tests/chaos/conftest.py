"""Chaos suite fixtures: structlog output captured per test (the ``chaos`` marker is
registered in pyproject.toml)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from chaos_rig import error_events

from stratum_client.logsetup import configure_logging, reset_logging


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[io.StringIO]:
    """Every chaos test logs JSON lines into a buffer it can scan (and not onto stderr).

    No scenario may make the daemon log at error level: the daemon logs internal failures
    it survives (a supervisor bug, a failed task) that way, and surviving them is not
    the same as handling the fault.
    """
    stream = io.StringIO()
    configure_logging("info", "json", {}, stream)
    yield stream
    reset_logging()
    print("\n".join(stream.getvalue().splitlines()[-60:]))  # shown only if the test failed
    errors = error_events(stream)
    assert not errors, f"{len(errors)} error-level log events, first: {errors[0]}"
