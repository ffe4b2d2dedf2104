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
  shares ``[23, "Difficulty too low"]``, with public-pool's wording;
* and, as ckpool's share log does, every share is logged with the header and the hash
  the pool computed (event ``local pool share``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog

from stratum_client.work.coinbase import build_coinbase
from stratum_client.work.hashing import dsha256
from stratum_client.work.header import build_header
from stratum_client.work.merkle import merkle_root
from stratum_client.work.target import share_difficulty

__all__ = [
    "PUBLIC_POOL_VARDIFF_INTERVAL",
    "REGTEST_VERSION",
    "LocalPool",
    "PoolJob",
    "SubmitRecord",
    "VersionRule",
    "vardiff_step",
]

log = structlog.get_logger(__name__)

_COINB1 = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4b03"
    "89130cfabe6d6d5cbab26a2599e92916edec5657a94a0708ddb970f5c45b5d"
)
_COINB2 = bytes.fromhex(
    "31650707758de07b010000000000001cfd7038212f736c7573682f000000000379ad0c2a000000001976a914"
    "7c154ed1dc59609e3d26abb2df2ea3d587cd8c4188ac00000000000000002c6a4c2952534b424c4f434b3ae7"
    "25d3994b811572c1f345deb98b56b465ef8e153ecbbd27fa37bf1b005161380000000000000000266a24aa21"
    "a9ed63b06a7946b190a3fda1d76165b25c9b883bcc6621b040773050ee2a1bb18f1800000000"
)
_BRANCH = tuple(
    bytes.fromhex(h)
    for h in (
        "2b77d9e413e8121cd7a17ff46029591051d0922bd90b2b2a38811af1cb57a2b2",
        "5c8874cef00f3a233939516950e160949ef327891c9090467cead995441d22c5",
        "2d91ff8e19ac5fa69a40081f26c5852d366d608b04d2efe0d5b65d111d0d8074",
        "0ae96f609ad2264112a0b2dfb65624bedbcea3b036a59c0173394bba3a74e887",
        "e62172e63973d69574a82828aeb5711fc5ff97946db10fc7ec32830b24df7bde",
        "adb49456453aab49549a9eb46bb26787fb538e0a5f656992275194c04651ec97",
        "a7bc56d04d2672a8683892d6c8d376c73d250a4871fdf6f57019bcc737d6d2c2",
        "d94eceb8182b4f418cd071e93ec2a8993a0898d4c93bc33d9302f60dbbd0ed10",
        "5ad7788b8c66f8f50d332b88a80077ce10e54281ca472b4ed9bbbbcb6cf99083",
        "9f9d784b33df1b3ed3edb4211afc0dc1909af9758c6f8267e469f5148ed04809",
        "48fd17affa76b23e6fb2257df30374da839d6cb264656a82e34b350722b05123",
        "c4f5ab01913fc186d550c1a28f3f3e9ffaca2016b961a6a751f8cca0089df924",
        "cff737e1d00176dd6bbfa73071adbb370f227cfb5fba186562e4060fcec877e1",
    )
)
_VERSION = 0x20000000
_NBITS = 0x1705AE3A
_GRANTED_MASK = 0x1FFFE000
_MAX_LINE = 16 * 1024
_KEPT_JOBS = 16

REGTEST_VERSION: Final = 0x30000000
"""Bitcoin Core's regtest template version (testdummy's bit 28 set): strict mode's default."""
PUBLIC_POOL_VARDIFF_INTERVAL: Final = 60.0
"""Seconds between public-pool's difficulty checks; pass it as ``vardiff_interval``."""
_VARDIFF_MIN = 0.00001
"""public-pool's lowest vardiff difficulty."""
_VARDIFF_MIN_SHARES = 5
"""Fewer accepted shares in a step and public-pool divides the difficulty by 6."""

VersionRule = Literal["replace", "xor", "or"]
"""How the pool turns submitted version bits into the header version: ``replace`` is
BIP310's ``(job & ~mask) | bits`` (miningcore), ``xor`` is public-pool's ``job ^ bits``,
``or`` is ckpool's and DATUM's ``job | bits``."""

_STRICT_REASONS: Final = {21: "Job not found", 22: "Duplicate share", 23: "Difficulty too low"}
"""public-pool's reject messages (eStratumErrorCode and StratumV1Client.ts)."""


@dataclass(frozen=True, slots=True)
class PoolJob:
    """A job as the pool issued it."""

    job_id: str
    prevhash: bytes
    ntime: int
    clean: bool
    version: int = _VERSION
    """The template version the job announces (and the pool rebuilds headers from)."""

    def notify_params(self) -> list[Any]:
        return [
            self.job_id,
            self.prevhash.hex(),
            _COINB1.hex(),
            _COINB2.hex(),
            [b.hex() for b in _BRANCH],
            f"{self.version:08x}",
            f"{_NBITS:08x}",
            f"{self.ntime:08x}",
            self.clean,
        ]


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One submit and the pool's verdict (``reason`` is empty when accepted)."""

    worker: str
    job_id: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    difficulty: float
    """The share's own difficulty when accepted; 0.0 when rejected."""
    accepted: bool
    reason: str = ""
    code: int | None = None
    """The reject code (21 stale, 22 duplicate, 23 low difficulty, …); None if accepted."""
    required: float = 0.0
    """The difficulty the share was judged at (0.0 if it was refused before that)."""
    header: str = ""
    """The 80-byte header the pool rebuilt, in hex ("" if it never got that far)."""
    hash: str = ""
    """dSHA256 of ``header``, byte-reversed for display ("" likewise)."""


@dataclass(slots=True, eq=False)
class _Client:
    """State of one miner connection."""

    writer: asyncio.StreamWriter
    session_id: str = ""
    extranonce1: bytes = b""
    subscribed: bool = False
    authorized: bool = False
    worker: str = ""
    version_mask: int = 0
    difficulty: float = 1.0
    previous_difficulty: float = 1.0
    seen: set[tuple[str, ...]] = field(default_factory=set)
    suggested: bool = False
    """A suggest_difficulty was honoured (strict mode honours only the first)."""
    window_shares: int = 0
    """Shares accepted since the last vardiff step (or the connection), and their
    difficulties' sum; the window opened at ``window_start`` (monotonic seconds)."""
    window_difficulty: float = 0.0
    window_start: float = field(default_factory=time.monotonic)


class _Reject(Exception):  # noqa: N818 - control flow inside the pool, never escapes
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A submit rebuilt into a header and hashed, with the difficulty it was judged at."""

    header: bytes
    digest: bytes
    difficulty: float
    required: float


class _Judged(_Reject):
    """A reject after the header was rebuilt and hashed."""

    def __init__(self, code: int, message: str, hashed: _Hashed) -> None:
        super().__init__(code, message)
        self.hashed = hashed


def vardiff_step(
    current: float, shares: int, difficulty_sum: float, seconds: float, share_interval: float
) -> float | None:
    """The difficulty a public-pool-style vardiff step moves to, or None to stay.

    ``shares`` accepted shares summing ``difficulty_sum`` arrived in ``seconds``. Fewer
    than five: the difficulty drops to a sixth. Otherwise it moves so that a share comes
    every ``share_interval`` seconds (public-pool aims at ten), but only when that is more
    than a factor of two away. Results are rounded down to a power of two and never go
    below public-pool's floor of 0.00001.
    """
    if shares < _VARDIFF_MIN_SHARES:
        wanted = current / 6
    else:
        wanted = difficulty_sum / seconds * share_interval
        if current / 2 <= wanted <= current * 2:
            return None
    new = max(_VARDIFF_MIN, 2.0 ** math.floor(math.log2(wanted)))
    return None if new == current else new


class LocalPool:
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
    ) -> None:
        """``strict`` judges like public-pool (see the module docstring); ``version``
        (default 0x30000000 strict, 0x20000000 otherwise) and ``version_rule`` (default
        ``xor`` strict, ``replace`` otherwise) can be set on their own. ``vardiff_interval``
        turns on vardiff steps (strict mode only; public-pool's is
        :data:`PUBLIC_POOL_VARDIFF_INTERVAL`), aiming at a share every
        ``vardiff_share_interval`` seconds."""
        if vardiff_interval is not None and not (strict and vardiff_interval > 0):
            raise ValueError("vardiff_interval needs strict=True and a positive interval")
        self.host = host
        self.port = port
        self.difficulty = difficulty
        self.extranonce2_size = extranonce2_size
        self.ssl_context = ssl_context
        self.job_interval = job_interval
        self.session_dedupe = session_dedupe
        """Remember accepted shares per session (as real pools do) instead of per
        connection: a share resent on a resumed session after its reply was lost is
        then refused as a duplicate rather than credited twice."""
        self.strict = strict
        self.version = (REGTEST_VERSION if strict else _VERSION) if version is None else version
        self.version_rule: VersionRule = version_rule or ("xor" if strict else "replace")
        self.vardiff_interval = vardiff_interval
        self.vardiff_share_interval = vardiff_share_interval
        self.vardiff_steps: list[tuple[str, float, float]] = []
        """(session id, old, new) for every vardiff step that changed a difficulty."""
        self.submits: list[SubmitRecord] = []
        self.requests: list[dict[str, Any]] = []
        self.silent = False
        self.reject_all = False
        self._submits_open = asyncio.Event()
        self._submits_open.set()
        self._held = 0
        self._jobs: OrderedDict[str, PoolJob] = OrderedDict()
        self._sessions: dict[str, bytes] = {}
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        """Shares accepted per session: a resumed session's resubmits are duplicates."""
        self._clients: set[_Client] = set()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._vardiff: asyncio.Task[None] | None = None
        self._block = 0
        self._job_seq = 0
        self._next_session = 0
        self.connections = 0
        self.new_block()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Listen (again, after :meth:`stop`, on the same port) keeping sessions and jobs."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context, limit=_MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]
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
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.writer.close()
        self._clients.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LocalPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        scheme = "stratum+ssl" if self.ssl_context else "stratum+tcp"
        return f"{scheme}://{self.host}:{self.port}"

    # -- test hooks ----------------------------------------------------------------

    @property
    def accepted(self) -> list[SubmitRecord]:
        return [s for s in self.submits if s.accepted]

    @property
    def rejected(self) -> list[SubmitRecord]:
        return [s for s in self.submits if not s.accepted]

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def hold_submits(self) -> None:
        """Read submits but answer none (nor anything after them on that connection)
        until :meth:`release_submits`: shares stay in flight for as long as a test needs."""
        self._submits_open.clear()

    def release_submits(self) -> None:
        """Answer the held submits, in order, and every later one at once."""
        self._submits_open.set()

    @property
    def jobs_issued(self) -> int:
        """Jobs announced so far (new blocks and new jobs alike); only ever grows."""
        return self._job_seq

    @property
    def held_submits(self) -> int:
        """Submits read and waiting for :meth:`release_submits`."""
        return self._held

    def new_block(self) -> PoolJob:
        """A new prevhash: every earlier job becomes stale (clean_jobs)."""
        self._block += 1
        self._jobs.clear()
        if self.strict:  # public-pool forgets its duplicate hashes with the jobs
            self._seen.clear()
            for client in self._clients:
                client.seen.clear()
        return self._issue(clean=True)

    def new_job(self) -> PoolJob:
        """A new job on the same block (clean_jobs false)."""
        return self._issue(clean=False)

    def _issue(self, *, clean: bool, to: _Client | None = None) -> PoolJob:
        """A new job on the current block, announced to every client (or only ``to``)."""
        self._job_seq += 1
        prevhash = hashlib.sha256(b"local-pool-block-%d" % self._block).digest()
        ntime = 0x647025B5 + self._job_seq
        job = PoolJob(f"{self._job_seq:x}", prevhash, ntime, clean, self.version)
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
            client.extranonce1 = self._fresh_extranonce1()
            self._sessions[client.session_id] = client.extranonce1
            self._notify(
                client,
                "mining.set_extranonce",
                [client.extranonce1.hex(), self.extranonce2_size],
            )
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

    def _vardiff_client(self, client: _Client, now: float) -> None:
        """public-pool's checkDifficulty: a new difficulty is sent, then a clean job."""
        if not client.authorized:
            return
        shares, total = client.window_shares, client.window_difficulty
        seconds = max(now - client.window_start, 1e-3)
        client.window_shares, client.window_difficulty, client.window_start = 0, 0.0, now
        new = vardiff_step(client.difficulty, shares, total, seconds, self.vardiff_share_interval)
        if new is None:
            return
        self.vardiff_steps.append((client.session_id, client.difficulty, new))
        client.difficulty = client.previous_difficulty = new
        self._notify(client, "mining.set_difficulty", [new])
        self._issue(clean=True, to=client)

    async def _drain_all(self) -> None:
        for client in list(self._clients):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer=writer, difficulty=self.difficulty)
        client.previous_difficulty = self.difficulty
        self._clients.add(client)
        self.connections += 1
        try:
            while line := await reader.readline():
                await self._handle_line(client, line)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()

    async def _handle_line(self, client: _Client, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            log.warning("local pool: malformed line", line=line[:80])
            return
        if not isinstance(request, dict):
            return
        self.requests.append(request)
        if self.silent:
            return
        if request.get("method") == "mining.submit" and not self._submits_open.is_set():
            self._held += 1
            try:
                await self._submits_open.wait()
            finally:
                self._held -= 1
        self._dispatch(client, request)
        with contextlib.suppress(ConnectionError):
            await client.writer.drain()

    def _dispatch(self, client: _Client, request: dict[str, Any]) -> None:
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
        except _Reject as exc:
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

    def _on_configure(self, client: _Client, params: list[Any]) -> dict[str, Any]:
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        requested = int(str(options.get("version-rolling.mask", "0")), 16)
        # public-pool grants its mask whatever the miner asked for
        client.version_mask = _GRANTED_MASK if self.strict else requested & _GRANTED_MASK
        return {"version-rolling": True, "version-rolling.mask": f"{client.version_mask:08x}"}

    def _on_subscribe(self, client: _Client, params: list[Any]) -> list[Any]:
        wanted = params[1] if len(params) > 1 and isinstance(params[1], str) else None
        if wanted and wanted in self._sessions:
            client.session_id = wanted
        else:
            self._next_session += 1
            client.session_id = f"{self._next_session:08x}"
            self._sessions[client.session_id] = self._fresh_extranonce1()
        client.extranonce1 = self._sessions[client.session_id]
        client.subscribed = True
        return [
            [["mining.set_difficulty", client.session_id], ["mining.notify", client.session_id]],
            client.extranonce1.hex(),
            self.extranonce2_size,
        ]

    def _on_authorize(self, client: _Client, params: list[Any]) -> bool:
        if not client.subscribed:
            raise _Reject(25, "not subscribed")
        client.worker = str(params[0]) if params else ""
        client.authorized = True
        return True

    def _on_suggest(self, client: _Client, params: list[Any]) -> bool:
        return True

    def _strict_suggest(self, client: _Client, rid: Any, params: list[Any]) -> None:
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

    def _after_authorize(self, client: _Client) -> None:
        if not (self.strict and client.suggested):
            self._notify(client, "mining.set_difficulty", [client.difficulty])
        job = next(reversed(self._jobs.values()))
        self._notify(client, "mining.notify", [*job.notify_params()[:-1], True])

    def _fresh_extranonce1(self) -> bytes:
        return hashlib.sha256(b"en1-%d-%f" % (len(self._sessions), time.monotonic())).digest()[:4]

    # -- share validation ----------------------------------------------------------

    def _on_submit(self, client: _Client, params: list[Any]) -> bool:
        try:
            hashed = self._validate(client, params)
        except _Reject as exc:
            if self.strict:
                exc.message = _STRICT_REASONS.get(exc.code, exc.message)
            judged = exc.hashed if isinstance(exc, _Judged) else None
            self._keep(client, params, judged, code=exc.code, reason=exc.message)
            raise
        client.window_shares += 1
        client.window_difficulty += hashed.required
        self._keep(client, params, hashed)
        return True

    def _validate(self, client: _Client, params: list[Any]) -> _Hashed:
        if not client.authorized:
            raise _Reject(24, "unauthorized worker")
        if self.reject_all:
            raise _Reject(20, "rejecting everything (test)")
        if len(params) not in (5, 6) or not all(isinstance(p, str) for p in params):
            raise _Reject(20, "bad submit params")
        _worker, job_id, en2, ntime, nonce = params[:5]
        bits = params[5] if len(params) == 6 else "00000000"
        key = (client.extranonce1.hex(), job_id, en2, ntime, nonce, bits)
        seen = (
            self._seen.setdefault(client.session_id, set()) if self.session_dedupe else client.seen
        )
        if self.strict:  # public-pool remembers a submit before judging it
            if key in seen:
                raise _Reject(22, "duplicate share")
            seen.add(key)
        job = self._jobs.get(job_id)
        if job is None:
            raise _Reject(21, "job not found")
        if key in seen and not self.strict:
            raise _Reject(22, "duplicate share")
        required = (
            client.difficulty if self.strict else min(client.difficulty, client.previous_difficulty)
        )
        hashed = self._hash(client, job, (en2, ntime, nonce, bits), required)
        if hashed.difficulty < required:
            raise _Judged(23, f"low difficulty share ({hashed.difficulty:.6g})", hashed)
        seen.add(key)
        return hashed

    def _hash(
        self, client: _Client, job: PoolJob, fields: tuple[str, str, str, str], required: float
    ) -> _Hashed:
        en2, ntime, nonce, bits = fields
        try:
            en2_bytes = bytes.fromhex(en2)
            ntime_v, nonce_v, bits_v = int(ntime, 16), int(nonce, 16), int(bits, 16)
        except ValueError as exc:
            raise _Reject(20, f"malformed hex: {exc}") from exc
        if len(en2_bytes) != self.extranonce2_size:
            raise _Reject(20, "wrong extranonce2 size")
        if not self.strict:  # public-pool checks neither: stray bits just hash wrong
            if bits_v & ~client.version_mask:
                raise _Reject(20, "version bits outside the mask")
            if not job.ntime <= ntime_v <= job.ntime + 7200:
                raise _Reject(20, "ntime out of range")
        coinbase = build_coinbase(_COINB1, client.extranonce1, en2_bytes, _COINB2)
        root = merkle_root(dsha256(coinbase), _BRANCH)
        version = self._rebuilt_version(job.version, bits_v & 0xFFFFFFFF, client.version_mask)
        header = build_header(version, job.prevhash, root, ntime_v, _NBITS, nonce_v)
        digest = dsha256(header)
        return _Hashed(header, digest, share_difficulty(digest), required)

    def _rebuilt_version(self, template: int, bits: int, mask: int) -> int:
        if self.version_rule == "xor":
            return template ^ bits
        if self.version_rule == "or":
            return template | bits
        return (template & ~mask) | (bits & mask)

    def _keep(
        self,
        client: _Client,
        params: list[Any],
        hashed: _Hashed | None,
        *,
        code: int | None = None,
        reason: str = "",
    ) -> None:
        """Record the verdict, and (strict mode) log it with what was hashed, as ckpool's
        share log does: the header and hash settle any "why was this rejected?"."""
        text = [str(p) for p in params] + [""] * 6
        record = SubmitRecord(
            worker=client.worker,
            job_id=text[1],
            extranonce1=client.extranonce1.hex(),
            extranonce2=text[2],
            ntime=text[3],
            nonce=text[4],
            version_bits=text[5] or None,
            difficulty=hashed.difficulty if hashed is not None and code is None else 0.0,
            accepted=code is None,
            reason=reason,
            code=code,
            required=0.0 if hashed is None else hashed.required,
            header="" if hashed is None else hashed.header.hex(),
            hash="" if hashed is None else hashed.digest[::-1].hex(),
        )
        self.submits.append(record)
        if self.strict and hashed is not None:
            log.info(
                "local pool share",
                worker=record.worker,
                job_id=record.job_id,
                version_bits=record.version_bits,
                header=record.header,
                hash=record.hash,
                share_difficulty=hashed.difficulty,
                required=hashed.required,
                accepted=record.accepted,
                code=code,
            )

    # -- wire ----------------------------------------------------------------------

    def _reply(self, client: _Client, rid: Any, result: Any, error: Any) -> None:
        self._write(client, {"id": rid, "result": result, "error": error})

    def _notify(self, client: _Client, method: str, params: list[Any]) -> None:
        self._write(client, {"id": None, "method": method, "params": params})

    def _write(self, client: _Client, message: dict[str, Any]) -> None:
        if client.writer.is_closing():
            return
        client.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
