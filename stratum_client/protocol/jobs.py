"""The jobs a share may still be submitted for, and the checks before a submit.

A share for a job the pool has discarded, or with the wrong extranonce2 size, is a
certain reject, so it is refused locally with :class:`WorkError` and never sent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType

from stratum_client.errors import WorkError
from stratum_client.work.job import Job

__all__ = ["JobBook", "submit_params"]


class JobBook:
    """Bounded, ordered ``job_id -> Job`` table, emptied by every clean job."""

    def __init__(self, max_jobs: int) -> None:
        self._max = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def view(self) -> Mapping[str, Job]:
        """Read-only view, oldest first."""
        return MappingProxyType(self._jobs)

    def add(self, job: Job) -> bool:
        """Record a job; False when it is a non-clean repeat of a job id we hold.

        A clean job is always taken: pools with small wrapping job counters may reuse an
        id across blocks, and the clean flag says everything older is gone anyway.
        """
        if not job.clean_jobs and job.job_id in self._jobs:
            return False
        if job.clean_jobs:
            self._jobs.clear()
        self._jobs[job.job_id] = job
        while len(self._jobs) > self._max:
            self._jobs.popitem(last=False)
        return True

    def resolve(self, job: Job | str) -> Job:
        """The current job for an id (or the same job object); WorkError if it is gone."""
        job_id = job if isinstance(job, str) else job.job_id
        known = self._jobs.get(job_id)
        if known is None:
            raise WorkError(
                f"not submitting for job {job_id!r}: not among the {len(self._jobs)} current "
                "jobs (stale after clean_jobs, evicted, or never received on this connection)"
            )
        if not isinstance(job, str) and job != known:
            raise WorkError(f"not submitting for job {job_id!r}: differs from the current one")
        return known


def submit_params(
    user: str, job: Job, *, extranonce2: bytes, ntime: int, nonce: int, version_bits: int
) -> list[object]:
    """``mining.submit`` params; the sixth (version bits) only when the job has a mask."""
    if len(extranonce2) != job.extranonce2_size:
        raise WorkError(
            f"extranonce2 is {len(extranonce2)} bytes; "
            f"job {job.job_id!r} needs {job.extranonce2_size}"
        )
    for name, value in (("ntime", ntime), ("nonce", nonce), ("version_bits", version_bits)):
        if not 0 <= value <= 0xFFFFFFFF:
            raise WorkError(f"{name} {value} does not fit in 32 bits")
    if version_bits & ~job.version_mask:
        raise WorkError(
            f"version_bits {version_bits:08x} outside job {job.job_id!r}'s "
            f"mask {job.version_mask:08x}"
        )
    params: list[object] = [user, job.job_id, extranonce2.hex(), f"{ntime:08x}", f"{nonce:08x}"]
    if job.version_mask:
        params.append(f"{version_bits:08x}")
    return params
