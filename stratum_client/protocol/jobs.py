"""One pool's jobs: the single owner of job state, from ``mining.notify`` to a submit.

The session changes it (notify, ``set_extranonce``, ``set_version_mask``, the subscribe
reply); the pool manager keeps one per pool across reconnects, so a resumed session can
keep the jobs of the block it left; the dispatcher builds work from its live jobs and asks
:meth:`JobTable.classify` whether a chip's nonce still belongs to one.

A share for a job the pool has discarded, or with the wrong extranonce2 size, is a
certain reject, so it is refused locally with :class:`WorkError` and never sent.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from stratum_client.errors import WorkError
from stratum_client.work.builder import JobBuilder
from stratum_client.work.extranonce import Extranonce2Counter
from stratum_client.work.job import Job

__all__ = [
    "LOST_CLEAN_JOBS",
    "LOST_EXTRANONCE_CHANGED",
    "LOST_JOB_REPLACED",
    "LOST_NOT_RESUMED",
    "JobEntry",
    "JobTable",
    "Retired",
    "same_work",
    "submit_params",
]

LOST_NOT_RESUMED = "session not resumed: extranonce1 changed"
LOST_EXTRANONCE_CHANGED = "extranonce1 changed by the pool (mining.set_extranonce)"
LOST_CLEAN_JOBS = "job invalidated by clean_jobs (new block)"
LOST_JOB_REPLACED = "job id reused by the pool for different work"

DEFAULT_MAX_JOBS = 64
_RETIRED_KEPT = 256
"""Invalidated jobs remembered, to say why a late nonce or a queued share is void."""
_COUNTERS_PER_JOB = 8
"""Extranonce2 counters kept, as a multiple of the live jobs."""


def same_work(a: Job, b: Job) -> bool:
    """Both jobs give the same headers for the same extranonce2 (one job, announced twice).

    Only what goes into the header counts: the arrival time, the clean flag, the stamped
    difficulty and the version mask are session context that a repeat may change.
    """
    return a is b or (
        a.job_id == b.job_id
        and a.prevhash == b.prevhash
        and a.coinb1 == b.coinb1
        and a.coinb2 == b.coinb2
        and a.merkle_branch == b.merkle_branch
        and (a.version, a.nbits, a.ntime) == (b.version, b.nbits, b.ntime)
        and (a.extranonce1, a.extranonce2_size) == (b.extranonce1, b.extranonce2_size)
    )


@dataclass(slots=True, eq=False)
class JobEntry:
    """A live job with its extranonce2 counter and the builder made from it.

    ``job`` is the copy work is built from; ``announced`` the pool's latest copy of the
    same work (a repeat notify changes only its arrival time, clean flag, difficulty).
    """

    job: Job
    counter: Extranonce2Counter
    announced: Job
    builder: JobBuilder | None = None
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class Retired:
    """A job that gives no more work, and why shares on it are void (None: aged out)."""

    job: Job
    reason: str | None


class JobTable:
    """Bounded, ordered live jobs of one pool, with what is in force and what was retired."""

    def __init__(self, max_jobs: int = DEFAULT_MAX_JOBS) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self._max = max_jobs
        self._live: OrderedDict[str, JobEntry] = OrderedDict()
        self._retired: deque[Retired] = deque(maxlen=_RETIRED_KEPT)
        self._counters: OrderedDict[tuple[str, bytes, int], Extranonce2Counter] = OrderedDict()
        self.extranonce1: bytes | None = None
        self.extranonce2_size = 0
        self.version_mask = 0

    def __len__(self) -> int:
        return len(self._live)

    def __repr__(self) -> str:
        return f"JobTable(live={len(self._live)}, retired={len(self._retired)})"

    @property
    def view(self) -> Mapping[str, Job]:
        """Read-only ``job_id -> Job`` of the live jobs, oldest first."""
        return MappingProxyType({job_id: e.announced for job_id, e in self._live.items()})

    def newest_first(self) -> Iterator[JobEntry]:
        return reversed(self._live.values())

    def newest(self) -> Job | None:
        entry = next(reversed(self._live.values()), None)
        return None if entry is None else entry.job

    # -- what the dispatcher and the submit path ask ----------------------------------

    def classify(self, job: Job) -> JobEntry | Retired | None:
        """The live entry for ``job`` (same work, see :func:`same_work`), the record of
        its retirement, or None if this table never had it (or forgot it)."""
        entry = self._live.get(job.job_id)
        if entry is not None and same_work(entry.job, job):
            return entry
        for record in reversed(self._retired):
            if same_work(record.job, job):
                return record
        return None

    def resolve(self, job: Job | str) -> Job:
        """The current job for an id, or for a job with the same work (so a copy received
        before a repeat notify still resolves); WorkError if it is gone or the id now
        names other work."""
        job_id = job if isinstance(job, str) else job.job_id
        known = self._live.get(job_id)
        if known is None:
            raise WorkError(
                f"not submitting for job {job_id!r}: not among the {len(self._live)} current "
                "jobs (stale after clean_jobs, evicted, or never received on this connection)"
            )
        if not isinstance(job, str) and not same_work(job, known.job):
            raise WorkError(f"not submitting for job {job_id!r}: differs from the current one")
        return known.announced

    # -- what the session changes -----------------------------------------------------

    def add(self, job: Job, *, clean: bool, repeat: bool = False) -> bool:
        """Record a job; False when it is a non-clean repeat of the same work we hold
        (unless ``repeat``: a resumed session's first notify is news to its listeners).

        A clean job retires every job of other work: pools with small wrapping job
        counters may reuse an id across blocks, and the clean flag says everything older
        is gone. A repeat of held work (a resumed pool's clean re-announcement) keeps
        its entry, counter and builder, so shares found on it stay valid. A non-clean
        notify that reuses an id for *different* work replaces the old job.
        """
        held = self._live.get(job.job_id)
        if clean:
            self.retire(lambda old: not same_work(old, job), LOST_CLEAN_JOBS)
        elif held is not None and same_work(held.job, job) and not repeat:
            return False
        held = self._live.pop(job.job_id, None)
        if held is not None and same_work(held.job, job):
            held.announced = job
        else:
            if held is not None:
                self._retired.append(Retired(held.job, LOST_JOB_REPLACED))
            held = JobEntry(job, self._counter(job), job)
        self._live[job.job_id] = held
        while len(self._live) > self._max:
            _, oldest = self._live.popitem(last=False)
            self._retired.append(Retired(oldest.job, None))
        return True

    def retire(self, doomed: Callable[[Job], bool], reason: str) -> int:
        """Retire every live job ``doomed`` picks; returns how many."""
        gone = [job_id for job_id, entry in self._live.items() if doomed(entry.job)]
        for job_id in gone:
            self._retired.append(Retired(self._live.pop(job_id).job, reason))
        return len(gone)

    def subscribed(self, extranonce1: bytes, extranonce2_size: int) -> int:
        """A new session's subscribe reply: jobs built on another extranonce1 are void."""
        self.extranonce1, self.extranonce2_size = extranonce1, extranonce2_size
        return self.retire(
            lambda job: (job.extranonce1, job.extranonce2_size) != (extranonce1, extranonce2_size),
            LOST_NOT_RESUMED,
        )

    def adopt_block(self, job: Job) -> bool:
        """A resumed session's first notify: keep the held jobs of ``job``'s block (and
        extranonce1), retire the rest; True if any other job was kept."""
        en1 = (job.extranonce1, job.extranonce2_size)

        def kept(held: Job) -> bool:
            return (
                held.prevhash == job.prevhash and (held.extranonce1, held.extranonce2_size) == en1
            )

        others = any(kept(e.job) and e.job.job_id != job.job_id for e in self._live.values())
        if others:
            self.retire(lambda held: not kept(held), LOST_CLEAN_JOBS)
        return others

    def set_extranonce(self, extranonce1: bytes, extranonce2_size: int) -> bool:
        """``mining.set_extranonce``: the pool hashes every submit with the new value at
        once, so every held job takes it and copies with the old one are void."""
        if (self.extranonce1, self.extranonce2_size) == (extranonce1, extranonce2_size):
            return False
        self.extranonce1, self.extranonce2_size = extranonce1, extranonce2_size
        for entry in self._live.values():
            old = entry.job
            self._retired.append(Retired(old, LOST_EXTRANONCE_CHANGED))
            entry.job = replace(old, extranonce1=extranonce1, extranonce2_size=extranonce2_size)
            entry.announced = replace(
                entry.announced, extranonce1=extranonce1, extranonce2_size=extranonce2_size
            )
            entry.counter = self._counter(entry.job)
            entry.builder, entry.exhausted = None, False
        return True

    def set_version_mask(self, mask: int) -> None:
        """A new mask applies to every held job at once (BIP310: valid immediately)."""
        self.version_mask = mask
        for entry in self._live.values():
            if entry.job.version_mask != mask:
                entry.job = replace(entry.job, version_mask=mask)
                entry.announced = replace(entry.announced, version_mask=mask)
                entry.builder = None

    def _counter(self, job: Job) -> Extranonce2Counter:
        """The job id's counter: shared across repeats so no extranonce2 is reused."""
        key = (job.job_id, job.prevhash, job.extranonce2_size)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = Extranonce2Counter(job.extranonce2_size)
            while len(self._counters) > self._max * _COUNTERS_PER_JOB:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(key)
        return counter


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
