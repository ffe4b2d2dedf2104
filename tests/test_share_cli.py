"""``stratum-client share``: every vector end to end, and one-line errors for bad input."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stratum_client.cli import main

VECTORS = json.loads((Path(__file__).parent / "data" / "stratum_vectors.json").read_text())
JOBS: list[dict[str, Any]] = VECTORS["jobs"]
SLUSH = next(j for j in JOBS if j["name"] == "slush-2023-diff683")


def _argv(vector: dict[str, Any], **overrides: str) -> list[str]:
    submit = vector["submit"]
    options = {
        "--notify": json.dumps(vector["notify"]),
        "--extranonce1": vector["extranonce1"],
        "--extranonce2": vector["extranonce2"],
        "--ntime": submit["ntime"],
        "--nonce": submit["nonce"],
        "--difficulty": str(vector.get("pool_difficulty", 1)),
    }
    if submit["version_bits"]:
        options["--version-bits"] = submit["version_bits"]
    if vector["version_mask"]:
        options["--version-mask"] = vector["version_mask"]
    options |= overrides
    argv = ["share"]
    for flag, value in options.items():
        argv += [flag, value]
    return argv


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.mark.parametrize("vector", JOBS, ids=[j["name"] for j in JOBS])
def test_every_vector(vector: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(_argv(vector), capsys)
    expect = vector["expect"]
    for key in ("coinbase_txid", "merkle_root", "header", "hash"):
        assert report[key] == expect[key]
    assert report["share_difficulty"] == pytest.approx(expect["share_difficulty"])
    assert report["meets_difficulty"] is True
    assert isinstance(report["network_difficulty"], float)
    assert report["verdict"]


def test_flipped_nonce_is_a_different_share(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(_argv(SLUSH, **{"--nonce": "0a029ed0"}), capsys)
    assert report["hash"] != SLUSH["expect"]["hash"]
    assert report["meets_difficulty"] is False


def test_low_difficulty_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(_argv(SLUSH, **{"--difficulty": "1024"}), capsys)
    assert report["meets_difficulty"] is False
    assert report["meets_network_target"] is False
    assert report["verdict"] == (
        "share difficulty 683.5 is below the pool difficulty 1024: "
        "a pool would reject it as low difficulty (code 23)"
    )


def test_accepted_and_block_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert "would accept" in _run(_argv(SLUSH, **{"--difficulty": "683.5"}), capsys)["verdict"]
    genesis = _run(_argv(JOBS[0]), capsys)
    assert genesis["meets_network_target"] is True
    assert "block candidate" in genesis["verdict"]
    assert genesis["network_difficulty"] == 1.0


def test_fractional_difficulty_and_whole_message(capsys: pytest.CaptureFixture[str]) -> None:
    message = json.dumps({"id": None, "method": "mining.notify", "params": SLUSH["notify"]})
    report = _run(_argv(SLUSH, **{"--notify": message, "--difficulty": "0.001"}), capsys)
    assert report["meets_difficulty"] is True
    assert report["pool_difficulty"] == 0.001


def test_rolled_share_reports_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    rolled = next(j for j in JOBS if j["name"] == "testnet-bitaxe-version-rolled")
    report = _run(_argv(rolled), capsys)
    assert (report["version"], report["version_bits"]) == ("20002000", "00002000")
    unrolled = _run(_argv(rolled, **{"--version-bits": "00000000"}), capsys)
    assert unrolled["meets_difficulty"] is False


@pytest.mark.parametrize(("form", "version"), [("xor", 0x30002000), ("replace", 0x20002000)])
def test_version_bits_form_says_how_the_pool_rebuilds_the_version(
    form: str, version: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a regtest-style job (bit 28 inside the mask) the same bits mean two versions."""
    rolled = next(j for j in JOBS if j["name"] == "testnet-bitaxe-version-rolled")
    notify = [*rolled["notify"][:5], "30000000", *rolled["notify"][6:]]
    argv = _argv(rolled, **{"--notify": json.dumps(notify), "--version-bits-form": form})
    report = _run(argv, capsys)
    header = bytes.fromhex(report["header"])
    assert struct.unpack_from("<I", header)[0] == version
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert report["hash"] == digest[::-1].hex()
    assert report["version"] == f"{version:08x}"
    assert report["version_bits"] == "00002000"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"--version-bits-form": "or"}, "--version-bits-form"),
        ({"--ntime": "647025b"}, "--ntime"),
        ({"--nonce": "0a029ed1ff"}, "--nonce"),
        ({"--nonce": "0x0a029ed"}, "--nonce"),
        ({"--version-bits": "2000"}, "--version-bits"),
        ({"--version-bits": "00001000"}, "--version-bits"),
        ({"--version-mask": "zzzzzzzz"}, "--version-mask"),
        ({"--extranonce1": "010"}, "--extranonce1"),
        ({"--extranonce2": "0g000000"}, "--extranonce2"),
        ({"--difficulty": "nan"}, "--difficulty"),
        ({"--difficulty": "-1"}, "--difficulty"),
        ({"--difficulty": "lots"}, "--difficulty"),
        ({"--notify": "[1, 2"}, "--notify"),
        ({"--notify": '{"a": 1}'}, "--notify"),
        ({"--notify": json.dumps(SLUSH["notify"][:7])}, "notify"),
        ({"--notify": json.dumps([*SLUSH["notify"][:8], "yes"])}, "notify.clean_jobs"),
        ({"--notify": json.dumps(["j", 5, *SLUSH["notify"][2:]])}, "notify.prevhash"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(
    overrides: dict[str, str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_argv(SLUSH, **overrides)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"stratum-client share: error: {field}: ")


def test_runs_as_a_module() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stratum_client", *_argv(SLUSH, **{"--difficulty": "1024"})],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["hash"] == SLUSH["expect"]["hash"]
    assert report["meets_difficulty"] is False


def test_bad_input_as_a_module_exits_non_zero() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stratum_client", *_argv(SLUSH, **{"--ntime": "xyz"})],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("stratum-client share: error: --ntime:")
