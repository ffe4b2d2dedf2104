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
    tps546 = {"bitaxe-gamma", "bitaxe-supra", "bitaxe-ultra"}
    ds4432u = {"bitaxe-ultra-201", "bitaxe-ultra-204", "bitaxe-supra-400"}
    assert set(report["boards"]) == tps546 | ds4432u
    for name, figures in report["boards"].items():
        # every sensor was read: 10 registers on a TPS546 board, 7 on a DS4432U one
        assert figures["requests_per_poll"] >= (9 if name in tps546 else 7)
        assert 0 < figures["control_rtt_ms_p50"] <= figures["control_rtt_ms_p99"]
        assert 0 < figures["critical_to_vout_off_ms_p50"] <= figures["critical_to_vout_off_ms_max"]
        assert figures["safety_cpu_s_per_poll"] > 0
