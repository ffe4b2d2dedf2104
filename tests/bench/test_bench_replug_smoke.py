"""Smoke test for ``bench/replug.py --quick``: two unplug/replug cycles of a board under the
whole daemon still run and report every figure.

It checks the report's shape and what must hold on every cycle (the full power-up seen in
order after the return, nothing lost, nothing invalid, the board switched off at the end),
never the timings: the machine is shared and wall time is noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURES = ("mining_s", "first_job_s", "first_share_s")


def test_quick_replug_bench_sees_the_power_up_every_cycle_and_loses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replug.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bench"] == "replug"
    assert report["cycles"] == 2

    cycles = report["per_cycle"]
    assert [c["cycle"] for c in cycles] == [1, 2]
    for cycle in cycles:
        assert cycle["power_up_seen"] is True, cycle["missing"]
        assert cycle["missing"] == []
        assert cycle["noticed_by"] in ("data port", "safety poll")
        for key in ("noticed_s", "reset_released_s", *MEASURES):
            assert math.isfinite(cycle[key]), key
            assert cycle[key] > 0, key
        # The chips hear nothing before reset release, and a share needs a job first (the
        # two are sampled, so they may fall in the same sample).
        assert cycle["reset_released_s"] < cycle["first_job_s"] <= cycle["first_share_s"]
    for key in MEASURES:
        figures = report["figures"][key]
        assert 0 < figures["median"] <= figures["max"], key
    assert report["power_up_seen"] == 2
    assert 0 <= report["within_5s"] <= 2

    assert report["shares_lost"] == 0
    assert report["invalid"] == 0
    ledger = report["ledger"]
    assert ledger["balanced"] is True
    assert ledger["accepted"] > 0
    assert ledger["accepted"] == ledger["pool_accepted"]
    assert ledger["board_failures"] == 0  # an unplug is not a board failure
    assert ledger["exit_status"] == 0
    assert ledger["vout_off_at_exit"] is True
