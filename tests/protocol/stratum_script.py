"""Helpers for writing pool conversations as plain data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from stratum_client.protocol import Output, PoolSession, SendBytes, SessionSettings
from stratum_client.protocol.jobs import JobTable

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "data" / "stratum_vectors.json").read_text()
)
JOBS = {job["name"]: job for job in VECTORS["jobs"]}
TESTNET = JOBS["testnet-bitaxe-version-rolled"]
SLUSH = JOBS["slush-2023-diff683"]

PASSWORD = "hunter2-secret"
UA = "test-miner/1.0"

E = TypeVar("E")


def settings(**overrides: Any) -> SessionSettings:
    fields: dict[str, Any] = {"user": "bc1qworker.rig1", "password": PASSWORD, "user_agent": UA}
    fields.update(overrides)
    return SessionSettings(**fields)


def line(**obj: Any) -> bytes:
    """One pool line; ``id_`` stands for ``id`` (a Python builtin)."""
    if "id_" in obj:
        obj["id"] = obj.pop("id_")
    return json.dumps(obj).encode() + b"\n"


def reply(request_id: object, result: object = True, error: object = None, **extra: Any) -> bytes:
    return line(id_=request_id, result=result, error=error, **extra)


def notification(method: str, *params: object, id_: object = None) -> bytes:
    return line(id_=id_, method=method, params=list(params))


def notify(job: dict[str, Any], *, job_id: str | None = None, clean: bool | None = None) -> bytes:
    params = list(job["notify"])
    if job_id is not None:
        params[0] = job_id
    if clean is not None:
        params[-1] = clean
    return notification("mining.notify", *params)


def sent(outputs: list[Output]) -> list[dict[str, Any]]:
    """The JSON objects of every SendBytes, in order."""
    found = []
    for out in outputs:
        if isinstance(out, SendBytes):
            assert out.data.endswith(b"\n")
            assert out.data.count(b"\n") == 1
            found.append(json.loads(out.data))
    return found


def only(outputs: list[Output], kind: type[E]) -> list[E]:
    return [out for out in outputs if isinstance(out, kind)]


def one(outputs: list[Output], kind: type[E]) -> E:
    found = only(outputs, kind)
    assert len(found) == 1, outputs
    return found[0]


def subscribe_result(en1: str, en2_size: int, sub_id: str = "sub-1") -> list[object]:
    return [[["mining.set_difficulty", sub_id], ["mining.notify", sub_id]], en1, en2_size]


def ready_session(
    en1: str = "57a6f098",
    en2_size: int = 4,
    mask: str | None = "1fffe000",
    difficulty: float | None = 512,
    now: float = 0.0,
    *,
    sub_id: str = "sub-1",
    resume_id: str | None = None,
    jobs: JobTable | None = None,
    **overrides: Any,
) -> tuple[PoolSession, list[Output]]:
    """A session through configure (granted ``mask``, or refused if None), subscribe
    (answered with ``sub_id``), authorize and one set_difficulty; request ids 1..3 are
    used up."""
    session = PoolSession(settings(**overrides), resume_id=resume_id, jobs=jobs)
    out = session.start(now)
    configure = {"version-rolling": True, "version-rolling.mask": mask} if mask else None
    error = None if mask else [20, "Unsupported method", None]
    subscribed = reply(2, subscribe_result(en1, en2_size, sub_id))
    data = reply(1, configure, error) + subscribed + reply(3)
    if difficulty is not None:
        data += notification("mining.set_difficulty", difficulty)
    out += session.receive_data(data, now)
    return session, out
