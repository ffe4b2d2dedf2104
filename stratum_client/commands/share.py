"""``stratum-client share``: check one share by hand, the way a pool would.

Given a notify, the extranonces and the submit fields, it rebuilds the coinbase, merkle
root and header, hashes it and says whether a pool would accept it, which is the quickest
way to settle "why did the pool reject this share?".
"""

from __future__ import annotations

import argparse
import json
import math

from stratum_client.errors import InputError, WorkError
from stratum_client.work.builder import JobBuilder
from stratum_client.work.coinbase import coinbase_txid
from stratum_client.work.hashing import display_hex
from stratum_client.work.job import DEFAULT_VERSION_MASK, Job
from stratum_client.work.notify import parse_hex, parse_hex_u32, parse_notify
from stratum_client.work.share import ShareResult, check_share
from stratum_client.work.target import network_difficulty
from stratum_client.work.versionroll import (
    DEFAULT_VERSION_BITS_FORM,
    VERSION_BITS_FORMS,
    VersionBitsForm,
    apply_version_bits,
)

__all__ = ["add_parser", "run"]

_LOW_DIFFICULTY_CODE = 23
"""The reject code pools use for a share above the target ("low difficulty share")."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``share`` sub-command."""
    parser = subparsers.add_parser(
        "share",
        help="check one share against a notify and print the verdict as JSON",
        description="Rebuild the header for a submit and report its hash and difficulty.",
    )
    parser.add_argument("--notify", required=True, help="mining.notify params as a JSON array")
    parser.add_argument("--extranonce1", required=True, help="extranonce1 from subscribe (hex)")
    parser.add_argument("--extranonce2", required=True, help="extranonce2 of the submit (hex)")
    parser.add_argument("--ntime", required=True, help="ntime of the submit (8 hex digits)")
    parser.add_argument("--nonce", required=True, help="nonce of the submit (8 hex digits)")
    parser.add_argument("--version-bits", help="version bits of the submit (8 hex digits)")
    parser.add_argument(
        "--version-mask",
        default=f"{DEFAULT_VERSION_MASK:08x}",
        help="version-rolling mask granted by the pool (default %(default)s)",
    )
    parser.add_argument(
        "--version-bits-form",
        default=DEFAULT_VERSION_BITS_FORM,
        help="how the pool rebuilds the version from --version-bits: xor (job ^ bits, as "
        "public-pool does) or replace (BIP310's mask replacement); default %(default)s",
    )
    parser.add_argument(
        "--difficulty", default="1", help="pool share difficulty (default 1, Stratum's initial)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the share and print one JSON object."""
    mask = parse_hex_u32("--version-mask", args.version_mask)
    extranonce2 = parse_hex("--extranonce2", args.extranonce2, max_size=32)
    job = parse_notify(
        _notify_params(args.notify),
        extranonce1=parse_hex("--extranonce1", args.extranonce1, max_size=32),
        extranonce2_size=len(extranonce2),
        difficulty=_difficulty(args.difficulty),
        version_mask=mask,
        version_bits_form=_form(args.version_bits_form),
    )
    version = _rolled_version(job, args.version_bits)
    ntime = parse_hex_u32("--ntime", args.ntime)
    nonce = parse_hex_u32("--nonce", args.nonce)
    result = check_share(job, extranonce2, ntime, nonce, version)
    print(json.dumps(_report(job, extranonce2, result), indent=2))
    return 0


def _notify_params(text: str) -> list[object]:
    """The params array, given either on its own or inside a whole notify message."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError("--notify", f"not valid JSON ({exc})") from exc
    if isinstance(value, dict) and "params" in value:
        value = value["params"]
    if not isinstance(value, list):
        raise InputError("--notify", "expected a JSON array of notify params")
    return value


def _form(text: str) -> VersionBitsForm:
    for form in VERSION_BITS_FORMS:
        if text == form:
            return form
    raise InputError("--version-bits-form", f"expected xor or replace, got {text!r}")


def _difficulty(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError("--difficulty", f"not a number: {text!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise InputError("--difficulty", f"must be finite and positive, got {text!r}")
    return value


def _rolled_version(job: Job, bits_text: str | None) -> int:
    if bits_text is None:
        return job.version
    bits = parse_hex_u32("--version-bits", bits_text)
    try:
        return apply_version_bits(job.version, bits, job.version_mask, job.version_bits_form)
    except WorkError as exc:
        raise InputError("--version-bits", str(exc)) from exc


def _report(job: Job, extranonce2: bytes, result: ShareResult) -> dict[str, object]:
    builder = JobBuilder(job)
    net_difficulty = network_difficulty(job.nbits)
    return {
        "job_id": job.job_id,
        "coinbase_txid": display_hex(coinbase_txid(builder.coinbase(extranonce2))),
        "merkle_root": builder.merkle_root(extranonce2).hex(),
        "header": result.header.hex(),
        "hash": result.hash_hex,
        "version": f"{result.version:08x}",
        "version_bits": f"{result.version_bits:08x}",
        "share_difficulty": _finite(result.share_difficulty),
        "pool_difficulty": job.difficulty,
        "network_difficulty": net_difficulty,
        "meets_difficulty": result.meets_pool_difficulty,
        "meets_network_target": result.meets_network_target,
        "verdict": _verdict(result, job.difficulty, net_difficulty),
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: a zero hash (infinite difficulty) is reported as null."""
    return value if math.isfinite(value) else None


def _verdict(result: ShareResult, pool_difficulty: float, net_difficulty: float) -> str:
    share = _number(result.share_difficulty)
    if result.meets_network_target:
        return (
            f"share difficulty {share} meets the network difficulty "
            f"{_number(net_difficulty)}: this is a block candidate"
        )
    if result.meets_pool_difficulty:
        return (
            f"share difficulty {share} meets the pool difficulty {_number(pool_difficulty)}: "
            "a pool would accept it (unless it is stale or a duplicate)"
        )
    return (
        f"share difficulty {share} is below the pool difficulty {_number(pool_difficulty)}: "
        f"a pool would reject it as low difficulty (code {_LOW_DIFFICULTY_CODE})"
    )


def _number(value: float) -> str:
    """Compact human form: one decimal from 1 up, three significant digits below."""
    if value < 1:
        return f"{value:.3g}"
    text = f"{value:.1f}"
    return text.removesuffix(".0")
