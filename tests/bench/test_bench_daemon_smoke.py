"""Smoke test for ``bench/daemon.py --quick``: the bench still runs and reports its figures.

It checks the shape and the sanity of the report (samples were taken, shares were real,
the daemon survived), never the timings: the machine is shared and wall time is noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_one_json_report() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "daemon.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bench"] == "daemon"

    latency = report["latency"]
    for key in ("notify_to_job_byte", "nonce_to_submit"):
        figures = latency[key]
        assert figures["n"] > 0, key
        assert 0 < figures["p50_us"] <= figures["p99_us"], key
        assert math.isfinite(figures["p99_us"]), key
    # The emulator hashes for real and the pool validates every share.
    assert latency["accepted"] > 0
    # Each announced block can make a share already on the wire stale ("job not found");
    # nothing else may be rejected, and the quick run announces 10 blocks.
    assert latency["rejected"] <= 10

    # The floor: the same spans through a relay that only moves bytes, one sample per
    # announced block and per paced nonce.
    floor = report["floor"]
    assert floor["notify_to_job_byte"]["n"] == 10
    assert floor["nonce_to_submit"]["n"] == 10 * 14
    for key in ("notify_to_job_byte", "nonce_to_submit"):
        assert 0 < floor[key]["p50_us"] <= floor[key]["p99_us"], key
    assert set(report["above_floor_p50_us"]) == {"notify_to_job_byte", "nonce_to_submit"}

    footprint = report["footprint"]
    assert [run["chains"] for run in footprint] == [1, 4]
    for run in footprint:
        assert run["daemon_alive"] is True
        assert run["cores_used"] >= 0
        assert 0 < run["peak_rss_mb"] < 1024
        assert run["rejected"] == 0
