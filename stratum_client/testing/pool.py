"""A local Stratum v1 pool that validates every share like a real pool.

It serves ``stratum-client demo`` and the integration tests: jobs come from a real 2023
block template (the 13-branch vector), with synthetic prevhashes for new blocks. Each
submit is rebuilt into a header and hashed; it is accepted only if the job is known, the
share is not a duplicate, the version bits stay inside the granted mask and the hash meets
the difficulty in force. Test hooks let a test change difficulty, send clean jobs, change
extranonce, ask for a reconnect, go silent, reject everything, hold submit replies back
(so shares are in flight at a chosen moment), or restart the listener while keeping
session state (so session resume can be exercised).

``strict=True`` makes it judge the way public-pool does (src/models/StratumV1Client.ts,
MiningJob.ts), so a miner that passes here is not merely passing a lenient test peer:

* the header version is the template version XOR the submitted bits, and the template
  version defaults to Bitcoin Core's regtest 0x30000000, whose bit 28 lies inside the
  mask (the case where XOR, OR and BIP310 replace pools disagree);
* a share is judged at the session difficulty in force when it arrives, with no grace
  for the previous one;
* the first ``mining.suggest_difficulty`` replaces the session difficulty and is answered
  with ``mining.set_difficulty`` (no result reply, later suggestions are ignored);
* a vardiff step every ``vardiff_interval`` seconds may send ``set_difficulty`` and a
  clean job, as public-pool's 60-second ``checkDifficulty`` does;
* stale jobs get ``[21, "Job not found"]``, duplicates ``[22, "Duplicate share"]``, low
  shares ``[23, "Difficulty too low"]`` even when they are blocks (difficulty first: with
  ``nbits=REGTEST_NBITS`` most nonces are), with public-pool's wording;
* and, as ckpool's share log does, every share is logged with the header and the hash
  the pool computed (event ``local pool share``).

Here: the conversation and test hooks; ``template``, ``judge``, ``sessions``, ``vardiff``
and ``server`` (jobs, verdicts, resumable sessions, vardiff steps, lines) hold the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from collections import OrderedDict
from typing import Any, Final

from stratum_client.testing.judge import (
    STRICT_REASONS,
    Hashed,
    Judged,
    Miner,
    Reject,
    Rules,
    SubmitRecord,
    judge,
    record,
)
from stratum_client.testing.server import LineServer
from stratum_client.testing.sessions import Sessions
from stratum_client.testing.template import (
    GRANTED_MASK,
    MAINNET_NBITS,
    MAINNET_VERSION,
    REGTEST_NBITS,
    REGTEST_VERSION,
    BlockRule,
    PoolJob,
    VersionRule,
)
from stratum_client.testing.vardiff import (
    PUBLIC_POOL_VARDIFF_INTERVAL,
    close_window,
    vardiff_step,
)

__all__ = [
    "PUBLIC_POOL_VARDIFF_INTERVAL",
    "REGTEST_NBITS",
    "REGTEST_VERSION",
    "BlockRule",
    "LocalPool",
    "PoolJob",
    "SubmitRecord",
    "VersionRule",
    "vardiff_step",
]

_KEPT_JOBS: Final = 16


class LocalPool(LineServer):
    """An asyncio Stratum server on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        difficulty: float = 1.0,
        extranonce2_size: int = 4,
        ssl_context: ssl.SSLContext | None = None,
        job_interval: float | None = None,
        session_dedupe: bool = False,
        strict: bool = False,
        version: int | None = None,
        version_rule: VersionRule | None = None,
        vardiff_interval: float | None = None,
        vardiff_share_interval: float = 10.0,
        nbits: int = MAINNET_NBITS,
        block_rule: BlockRule | None = None,
    ) -> None:
        """``strict`` judges like public-pool (see the module docstring); ``version``
        (default 0x30000000 strict, 0x20000000 otherwise) and ``version_rule`` (default
        ``xor`` strict, ``replace`` otherwise) can be set on their own. ``vardiff_interval``
        turns on vardiff steps (strict mode only; public-pool's is
        :data:`PUBLIC_POOL_VARDIFF_INTERVAL`), aiming at a share every
        ``vardiff_share_interval`` seconds. ``nbits`` is the network target jobs announce
        (:data:`REGTEST_NBITS` makes nearly every nonce a block candidate); ``block_rule``
        (default ``difficulty`` strict, ``block`` otherwise) is what is checked first."""
        if vardiff_interval is not None and not (strict and vardiff_interval > 0):
            raise ValueError("vardiff_interval needs strict=True and a positive interval")
        super().__init__(host, port, ssl_context, difficulty)
        self.extranonce2_size = extranonce2_size
        self.job_interval = job_interval
        self.session_dedupe = session_dedupe
        """Remember accepted shares per session (as real pools do) instead of per
        connection: a share resent on a resumed session after its reply was lost is
        then refused as a duplicate rather than credited twice."""
        self.strict = strict
        default_version = REGTEST_VERSION if strict else MAINNET_VERSION
        self.version = default_version if version is None else version
        self.version_rule: VersionRule = version_rule or ("xor" if strict else "replace")
        self.nbits = nbits
        self.block_rule: BlockRule = block_rule or ("difficulty" if strict else "block")
        self.vardiff_interval = vardiff_interval
        self.vardiff_share_interval = vardiff_share_interval
        self.vardiff_steps: list[tuple[str, float, float]] = []
        """(session id, old, new) for every vardiff step that changed a difficulty."""
        self.submits: list[SubmitRecord] = []
        self.reject_all = False
        self._jobs: OrderedDict[str, PoolJob] = OrderedDict()
        self._sessions = Sessions()
        self._ticker: asyncio.Task[None] | None = None
        self._vardiff: asyncio.Task[None] | None = None
        self._block = 0
        self._job_seq = 0
        self.new_block()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Listen (again, after :meth:`stop`, on the same port) keeping sessions and jobs."""
        await super().start()
        if self.job_interval and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="local-pool-jobs")
        if self.vardiff_interval and self._vardiff is None:
            self._vardiff = asyncio.create_task(self._vardiff_loop(), name="local-pool-vardiff")

    async def stop(self) -> None:
        """Close the listener and drop every connection (a pool restart or crash)."""
        for task in (self._ticker, self._vardiff):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._vardiff = None
        await super().stop()

    # -- test hooks ----------------------------------------------------------------

    @property
    def accepted(self) -> list[SubmitRecord]:
        return [s for s in self.submits if s.accepted]

    @property
    def rejected(self) -> list[SubmitRecord]:
        return [s for s in self.submits if not s.accepted]

    @property
    def blocks(self) -> list[SubmitRecord]:
        """Accepted submits whose hash met the network target: blocks the pool took."""
        return [s for s in self.submits if s.accepted and s.block]

    @property
    def jobs_issued(self) -> int:
        """Jobs announced so far (new blocks and new jobs alike); only ever grows."""
        return self._job_seq

    def new_block(self) -> PoolJob:
        """A new prevhash: every earlier job becomes stale (clean_jobs)."""
        self._block += 1
        self._jobs.clear()
        if self.strict:  # public-pool forgets its duplicate hashes with the jobs
            self._sessions.forget_shares()
            for client in self._clients:
                client.seen.clear()
        return self._issue(clean=True)

    def new_job(self) -> PoolJob:
        """A new job on the same block (clean_jobs false)."""
        return self._issue(clean=False)

    def _issue(self, *, clean: bool, to: Miner | None = None) -> PoolJob:
        """A new job on the current block, announced to every client (or only ``to``)."""
        self._job_seq += 1
        prevhash = hashlib.sha256(b"local-pool-block-%d" % self._block).digest()
        ntime = 0x647025B5 + self._job_seq
        job = PoolJob(f"{self._job_seq:x}", prevhash, ntime, clean, self.version, self.nbits)
        self._jobs[job.job_id] = job
        while len(self._jobs) > _KEPT_JOBS:
            self._jobs.popitem(last=False)
        for client in list(self._clients) if to is None else [to]:
            client.previous_difficulty = client.difficulty
            if client.authorized or client.subscribed:
                self._notify(client, "mining.notify", job.notify_params())
        return job

    async def broadcast_new_block(self) -> PoolJob:
        job = self.new_block()
        await self._drain_all()
        return job

    async def broadcast_new_job(self) -> PoolJob:
        job = self.new_job()
        await self._drain_all()
        return job

    async def set_difficulty(self, difficulty: float) -> None:
        """Change difficulty for every client; the previous one is honoured until the next job.

        Real pools grant that grace because shares in flight were found at the old value.
        """
        self.difficulty = difficulty
        for client in list(self._clients):
            client.previous_difficulty = difficulty if self.strict else client.difficulty
            client.difficulty = difficulty
            self._notify(client, "mining.set_difficulty", [difficulty])
        await self._drain_all()

    async def vardiff_now(self) -> None:
        """Run one vardiff step at once, as the timer would (strict mode)."""
        now = time.monotonic()
        for client in list(self._clients):
            self._vardiff_client(client, now)
        await self._drain_all()

    async def set_extranonce(self) -> None:
        """Give every client a fresh extranonce1 (as a proxy reshuffle would)."""
        for client in list(self._clients):
            self._sessions.renew_extranonce1(client)
            params = [client.extranonce1.hex(), self.extranonce2_size]
            self._notify(client, "mining.set_extranonce", params)
            job = next(reversed(self._jobs.values()))
            self._notify(client, "mining.notify", job.notify_params())
        await self._drain_all()

    async def request_reconnect(self, host: str, port: int, wait: int = 0) -> None:
        for client in list(self._clients):
            self._notify(client, "client.reconnect", [host, port, wait])
        await self._drain_all()

    # -- serving -------------------------------------------------------------------

    async def _tick(self) -> None:
        assert self.job_interval is not None
        while True:
            await asyncio.sleep(self.job_interval)
            if not self.silent:
                await self.broadcast_new_job()

    async def _vardiff_loop(self) -> None:
        assert self.vardiff_interval is not None
        while True:
            await asyncio.sleep(self.vardiff_interval)
            if not self.silent:
                await self.vardiff_now()

    def _vardiff_client(self, client: Miner, now: float) -> None:
        """public-pool's checkDifficulty: a new difficulty is sent, then a clean job."""
        if not client.authorized:
            return
        new = close_window(client, now, self.vardiff_share_interval)
        if new is None:
            return
        self.vardiff_steps.append((client.session_id, client.difficulty, new))
        client.difficulty = client.previous_difficulty = new
        self._notify(client, "mining.set_difficulty", [new])
        self._issue(clean=True, to=client)

    def _dispatch(self, client: Miner, request: dict[str, Any]) -> None:
        method = request.get("method")
        params = request.get("params") or []
        rid = request.get("id")
        if self.strict and method == "mining.suggest_difficulty":
            self._strict_suggest(client, rid, params)
            return
        handler = {
            "mining.configure": self._on_configure,
            "mining.subscribe": self._on_subscribe,
            "mining.authorize": self._on_authorize,
            "mining.submit": self._on_submit,
            "mining.suggest_difficulty": self._on_suggest,
            "mining.extranonce.subscribe": self._on_suggest,
        }.get(str(method))
        if handler is None:
            self._reply(client, rid, None, [20, f"unknown method {method}", None])
            return
        try:
            result = handler(client, params)
        except Reject as exc:
            self._reply(
                client,
                rid,
                False if method == "mining.submit" else None,
                [exc.code, exc.message, None],
            )
            return
        self._reply(client, rid, result, None)
        if method == "mining.authorize":
            self._after_authorize(client)

    def _on_configure(self, client: Miner, params: list[Any]) -> dict[str, Any]:
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        requested = int(str(options.get("version-rolling.mask", "0")), 16)
        # public-pool grants its mask whatever the miner asked for
        client.version_mask = GRANTED_MASK if self.strict else requested & GRANTED_MASK
        return {"version-rolling": True, "version-rolling.mask": f"{client.version_mask:08x}"}

    def _on_subscribe(self, client: Miner, params: list[Any]) -> list[Any]:
        wanted = params[1] if len(params) > 1 and isinstance(params[1], str) else None
        self._sessions.subscribe(client, wanted)
        client.subscribed = True
        return [
            [["mining.set_difficulty", client.session_id], ["mining.notify", client.session_id]],
            client.extranonce1.hex(),
            self.extranonce2_size,
        ]

    def _on_authorize(self, client: Miner, params: list[Any]) -> bool:
        if not client.subscribed:
            raise Reject(25, "not subscribed")
        client.worker = str(params[0]) if params else ""
        client.authorized = True
        return True

    def _on_suggest(self, client: Miner, params: list[Any]) -> bool:
        return True

    def _strict_suggest(self, client: Miner, rid: Any, params: list[Any]) -> None:
        """public-pool: the first valid suggestion becomes the session difficulty and is
        answered with set_difficulty alone; later ones get no answer at all."""
        if client.suggested:
            return
        value = params[0] if params else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            self._reply(client, rid, None, [20, "Suggest difficulty validation error", None])
            return
        client.difficulty = client.previous_difficulty = float(value)
        client.suggested = True
        self._notify(client, "mining.set_difficulty", [client.difficulty])

    def _after_authorize(self, client: Miner) -> None:
        if not (self.strict and client.suggested):
            self._notify(client, "mining.set_difficulty", [client.difficulty])
        job = next(reversed(self._jobs.values()))
        self._notify(client, "mining.notify", [*job.notify_params()[:-1], True])

    # -- share validation ----------------------------------------------------------

    def _on_submit(self, client: Miner, params: list[Any]) -> bool:
        try:
            hashed = self._judge(client, params)
        except Reject as exc:
            if self.strict:
                exc.message = STRICT_REASONS.get(exc.code, exc.message)
            judged = exc.hashed if isinstance(exc, Judged) else None
            self._keep(client, params, judged, code=exc.code, reason=exc.message)
            raise
        client.window_shares += 1
        client.window_difficulty += hashed.required
        self._keep(client, params, hashed)
        return True

    def _judge(self, client: Miner, params: list[Any]) -> Hashed:
        if not client.authorized:
            raise Reject(24, "unauthorized worker")
        if self.reject_all:
            raise Reject(20, "rejecting everything (test)")
        seen = self._sessions.seen(client.session_id) if self.session_dedupe else client.seen
        rules = Rules(self.strict, self.version_rule, self.extranonce2_size, self.block_rule)
        return judge(rules, client, self._jobs, seen, params)

    def _keep(
        self,
        client: Miner,
        params: list[Any],
        hashed: Hashed | None,
        *,
        code: int | None = None,
        reason: str = "",
    ) -> None:
        kept = record(client, params, hashed, strict=self.strict, code=code, reason=reason)
        self.submits.append(kept)
