"""``bench/board.py --quick`` still runs and reports its figures (shape and sanity only;
timings on a shared machine are noise, so none is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_board_bench_prints_one_json_report() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "board.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bench"] == "board"
    assert set(report["boards"]) == {"bitaxe-gamma", "bitaxe-supra", "bitaxe-ultra"}
    for figures in report["boards"].values():
        assert figures["requests_per_poll"] >= 9  # every sensor was read
        assert 0 < figures["control_rtt_ms_p50"] <= figures["control_rtt_ms_p99"]
        assert 0 < figures["critical_to_vout_off_ms_p50"] <= figures["critical_to_vout_off_ms_max"]
        assert figures["safety_cpu_s_per_poll"] > 0
