"""Fixtures for the dashboard tests; the rig itself is in :mod:`web_rig`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from web_rig import LiveWeb, live_web_rig


@pytest.fixture
async def live_web(tmp_path: Path) -> AsyncIterator[LiveWeb]:
    async with live_web_rig(tmp_path) as live:
        yield live
