"""The notify parser: valid jobs in, InputError naming the field for anything else."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_client.errors import InputError
from stratum_client.work.notify import (
    MAX_COINBASE_BYTES,
    MAX_MERKLE_BRANCHES,
    parse_hex,
    parse_hex_u32,
    parse_notify,
)

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "stratum_vectors.json").read_text())
SLUSH: list[Any] = next(j for j in VECTORS["jobs"] if j["name"] == "slush-2023-diff683")["notify"]
CONTEXT: dict[str, Any] = {
    "extranonce1": bytes.fromhex("01000000"),
    "extranonce2_size": 4,
    "difficulty": 1.0,
    "version_mask": 0x1FFFE000,
}
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


def _params(**changes: Any) -> list[Any]:
    names = ["job_id", "prevhash", "coinb1", "coinb2", "merkle_branch", "version", "nbits"]
    params = list(SLUSH)
    for name, value in changes.items():
        params[[*names, "ntime", "clean_jobs"].index(name)] = value
    return params


def test_parses_the_vector_job() -> None:
    job = parse_notify(_params(), **CONTEXT, received_at=12.5)
    assert job.job_id == "esp"
    assert job.prevhash.hex() == SLUSH[1]
    assert len(job.merkle_branch) == 13
    assert (job.version, job.nbits, job.ntime) == (0x20000004, 0x1705AE3A, 0x647025B5)
    assert job.clean_jobs is True
    assert job.version_mask == 0x1FFFE000
    assert job.received_at == 12.5


def test_clean_jobs_is_the_last_element() -> None:
    job = parse_notify([*SLUSH[:8], "extra", False], **CONTEXT)
    assert job.clean_jobs is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"job_id": 7}, "notify.job_id"),
        ({"job_id": ""}, "notify.job_id"),
        ({"job_id": "x" * 129}, "notify.job_id"),
        ({"prevhash": SLUSH[1][:-2]}, "notify.prevhash"),
        ({"prevhash": "0x" + SLUSH[1][2:]}, "notify.prevhash"),
        ({"prevhash": SLUSH[1][:-2] + " 0"}, "notify.prevhash"),
        ({"prevhash": None}, "notify.prevhash"),
        ({"coinb1": "abc"}, "notify.coinb1"),
        ({"coinb1": "zz"}, "notify.coinb1"),
        ({"coinb2": 5}, "notify.coinb2"),
        ({"merkle_branch": "00" * 32}, "notify.merkle_branch"),
        ({"version": "2000000"}, "notify.version"),
        ({"version": "+2000000"}, "notify.version"),
        ({"version": 536870916}, "notify.version"),
        ({"nbits": "1705ae3"}, "notify.nbits"),
        ({"nbits": "00000000"}, "notify.nbits"),
        ({"nbits": "1d800001"}, "notify.nbits"),
        ({"ntime": "647025b5 "}, "notify.ntime"),
        ({"clean_jobs": "true"}, "notify.clean_jobs"),
        ({"clean_jobs": 1}, "notify.clean_jobs"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_notify(_params(**changes), **CONTEXT)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_bad_branch_entry_is_named_by_index() -> None:
    branch = list(SLUSH[4])
    branch[3] = branch[3][:-2]
    with pytest.raises(InputError) as caught:
        parse_notify(_params(merkle_branch=branch), **CONTEXT)
    assert caught.value.field == "notify.merkle_branch[3]"


def test_branch_count_is_capped() -> None:
    entry = "11" * 32
    assert len(parse_notify(_params(merkle_branch=[entry] * 64), **CONTEXT).merkle_branch) == 64
    with pytest.raises(InputError, match="cap"):
        parse_notify(_params(merkle_branch=[entry] * (MAX_MERKLE_BRANCHES + 1)), **CONTEXT)


def test_coinbase_size_is_capped() -> None:
    half = "00" * (MAX_COINBASE_BYTES // 2)
    parse_notify(_params(coinb1=half, coinb2=half), **CONTEXT)
    with pytest.raises(InputError) as caught:
        parse_notify(_params(coinb1=half, coinb2=half + "00"), **CONTEXT)
    assert caught.value.field == "notify.coinb2"
    with pytest.raises(InputError) as caught:
        parse_notify(_params(coinb1="00" * (MAX_COINBASE_BYTES + 1)), **CONTEXT)
    assert caught.value.field == "notify.coinb1"


@pytest.mark.parametrize("params", [SLUSH[:8], [], "not a list", None, {"params": SLUSH}])
def test_wrong_arity_or_shape(params: Any) -> None:
    with pytest.raises(InputError) as caught:
        parse_notify(params, **CONTEXT)
    assert caught.value.field == "notify"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"extranonce1": bytes(33)}, "extranonce1"),
        ({"extranonce1": "01000000"}, "extranonce1"),
        ({"extranonce2_size": 33}, "extranonce2_size"),
        ({"extranonce2_size": -1}, "extranonce2_size"),
        ({"extranonce2_size": True}, "extranonce2_size"),
        ({"difficulty": 0}, "difficulty"),
        ({"difficulty": float("nan")}, "difficulty"),
        ({"difficulty": float("inf")}, "difficulty"),
        ({"difficulty": -5.0}, "difficulty"),
        ({"version_mask": 1 << 32}, "version_mask"),
    ],
)
def test_bad_session_context_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_notify(_params(), **(CONTEXT | changes))
    assert caught.value.field == field


def test_extranonce2_size_zero_is_allowed() -> None:
    assert parse_notify(_params(), **(CONTEXT | {"extranonce2_size": 0})).extranonce2_size == 0


def test_hex_helpers() -> None:
    assert parse_hex("f", "ABcd") == b"\xab\xcd"
    assert parse_hex("f", "") == b""
    assert parse_hex_u32("f", "0a029ed1") == 0x0A029ED1
    for bad in ("abc", "0x12", "12 34", "١٢", "ab\n"):
        with pytest.raises(InputError, match=r"^f: "):
            parse_hex("f", bad)
    with pytest.raises(InputError, match="longer than 4 bytes"):
        parse_hex("f", "00" * 5, max_size=4)


@settings(max_examples=300)
@given(st.lists(JSONISH, max_size=12))
def test_arbitrary_params_raise_only_input_error(params: list[Any]) -> None:
    with contextlib.suppress(InputError):
        parse_notify(params, **CONTEXT)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(SLUSH) - 1), JSONISH)
def test_one_mutated_field_raises_only_input_error(index: int, value: Any) -> None:
    params = list(SLUSH)
    params[index] = value
    try:
        job = parse_notify(params, **CONTEXT)
    except InputError:
        return
    assert len(job.prevhash) == 32
