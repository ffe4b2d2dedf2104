"""The jobs a share may still be submitted for, and the checks before a submit.

A share for a job the pool has discarded, or with the wrong extranonce2 size, is a
certain reject, so it is refused locally with :class:`WorkError` and never sent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from stratum_client.errors import WorkError
from stratum_client.work.job import Job

__all__ = ["JobBook", "same_work", "submit_params"]


def same_work(a: Job, b: Job) -> bool:
    """Both jobs give the same headers for the same extranonce2 (one job, announced twice).

    Only what goes into the header counts: the arrival time, the clean flag, the stamped
    difficulty and the version mask are session context that a repeat may change.
    """
    return (
        a.job_id == b.job_id
        and a.prevhash == b.prevhash
        and a.coinb1 == b.coinb1
        and a.coinb2 == b.coinb2
        and a.merkle_branch == b.merkle_branch
        and (a.version, a.nbits, a.ntime) == (b.version, b.nbits, b.ntime)
        and (a.extranonce1, a.extranonce2_size) == (b.extranonce1, b.extranonce2_size)
    )


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

    def add(self, job: Job, *, clean: bool | None = None) -> bool:
        """Record a job; False when it is a non-clean repeat of the same work we hold.

        A clean job is always taken: pools with small wrapping job counters may reuse an
        id across blocks, and the clean flag says everything older is gone anyway. A
        non-clean notify that reuses an id for *different* work (a new extranonce1 after
        ``mining.set_extranonce``, a pool restarting its counter) replaces the old job:
        the pool now checks submits against the new one. ``clean`` overrides the job's
        own flag (a resumed session's re-announcement, see :class:`PoolSession`).
        """
        if clean is None:
            clean = job.clean_jobs
        held = self._jobs.get(job.job_id)
        if not clean and held is not None and same_work(held, job):
            return False
        if clean:
            self._jobs.clear()
        self._jobs.pop(job.job_id, None)
        self._jobs[job.job_id] = job
        while len(self._jobs) > self._max:
            self._jobs.popitem(last=False)
        return True

    def restamp(
        self,
        *,
        extranonce1: bytes | None = None,
        extranonce2_size: int | None = None,
        version_mask: int | None = None,
    ) -> None:
        """Apply a session change to every held job, as the pool applies it at once.

        After ``mining.set_extranonce`` the pool hashes every submit with the new
        extranonce1, and after ``mining.set_version_mask`` it checks every submit against
        the new mask (BIP310: valid immediately), whichever job the submit names.
        """
        for job_id, job in self._jobs.items():
            self._jobs[job_id] = replace(
                job,
                extranonce1=job.extranonce1 if extranonce1 is None else extranonce1,
                extranonce2_size=(
                    job.extranonce2_size if extranonce2_size is None else extranonce2_size
                ),
                version_mask=job.version_mask if version_mask is None else version_mask,
            )

    def resolve(self, job: Job | str) -> Job:
        """The current job for an id, or for a job with the same work (see
        :func:`same_work`, so a copy received before a repeat notify still resolves);
        WorkError if it is gone or the id now names other work."""
        job_id = job if isinstance(job, str) else job.job_id
        known = self._jobs.get(job_id)
        if known is None:
            raise WorkError(
                f"not submitting for job {job_id!r}: not among the {len(self._jobs)} current "
                "jobs (stale after clean_jobs, evicted, or never received on this connection)"
            )
        if not isinstance(job, str) and job is not known and not same_work(job, known):
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
