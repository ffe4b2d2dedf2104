"""Work-building throughput on the 13-branch slush-2023-diff683 job.

Run ``python bench/work.py``. Prints readable lines, then one JSON object on the last line.
Each figure is the median of several timed repeats, because a busy machine makes single
runs noisy. The plain-hashlib line does the same SHA-256 work with no project code, as the
ceiling to compare full-header building against.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

from stratum_client.work import (
    MIDSTATE_BACKEND,
    Extranonce2Counter,
    JobBuilder,
    check_work_nonce,
    parse_notify,
)

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "data" / "stratum_vectors.json"
REPEATS = 7
UNITS = 20_000


def _job_builder() -> JobBuilder:
    vector = next(
        j for j in json.loads(VECTORS.read_text())["jobs"] if j["name"] == "slush-2023-diff683"
    )
    job = parse_notify(
        vector["notify"],
        extranonce1=bytes.fromhex(vector["extranonce1"]),
        extranonce2_size=len(bytes.fromhex(vector["extranonce2"])),
        difficulty=512.0,
        version_mask=0x1FFFE000,
    )
    return JobBuilder(job)


def _rate(run: Callable[[int], None], units: int) -> float:
    """Median units per second over REPEATS timed runs of ``run(units)``."""
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(units)
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def _builder_loop(builder: JobBuilder, midstates: int) -> Callable[[int], None]:
    def run(units: int) -> None:
        counter = Extranonce2Counter(builder.job.extranonce2_size)
        for _ in range(units):
            builder.build(counter.take(), midstates=midstates)

    return run


def _hashlib_loop(builder: JobBuilder) -> Callable[[int], None]:
    job = builder.job
    head, tail, branch = job.coinb1 + job.extranonce1, job.coinb2, job.merkle_branch

    def run(units: int) -> None:
        for counter in range(units):
            node = sha256(sha256(head + counter.to_bytes(4, "little") + tail).digest()).digest()
            for sibling in branch:
                node = sha256(sha256(node + sibling).digest()).digest()

    return run


def _check_loop(builder: JobBuilder) -> Callable[[int], None]:
    work = builder.build(bytes(builder.job.extranonce2_size))

    def run(units: int) -> None:
        for nonce in range(units):
            check_work_nonce(work, nonce)

    return run


def main() -> None:
    """Measure and print every figure."""
    builder = _job_builder()
    figures = {
        "midstate_backend": MIDSTATE_BACKEND,
        "branches": len(builder.job.merkle_branch),
        "hashlib_baseline_units_per_s": round(_rate(_hashlib_loop(builder), UNITS)),
        "full_header_units_per_s": round(_rate(_builder_loop(builder, 0), UNITS)),
        "midstate1_units_per_s": round(_rate(_builder_loop(builder, 1), UNITS)),
        "midstate4_units_per_s": round(_rate(_builder_loop(builder, 4), UNITS)),
        "share_check_us": round(1e6 / _rate(_check_loop(builder), UNITS), 2),
    }
    print(f"midstate backend:          {figures['midstate_backend']}")
    print(f"plain hashlib, same work:  {figures['hashlib_baseline_units_per_s']:>9,} units/s")
    print(f"full-header work:          {figures['full_header_units_per_s']:>9,} units/s")
    print(f"1-midstate work:           {figures['midstate1_units_per_s']:>9,} units/s")
    print(f"4-midstate work:           {figures['midstate4_units_per_s']:>9,} units/s")
    print(f"share check (Work+nonce):  {figures['share_check_us']:>9} µs")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
