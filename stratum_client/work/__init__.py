"""Pure work building: coinbase, merkle root, header, midstates, targets and share checks.

Nothing here performs I/O or keeps state beyond one job's precomputation, so the daemon,
the drivers, the ``share`` command and the tests all run the same arithmetic.
"""

from __future__ import annotations

from stratum_client.work.builder import MIDSTATE_COUNTS, JobBuilder, build_work
from stratum_client.work.coinbase import build_coinbase, coinbase_txid
from stratum_client.work.extranonce import (
    MAX_EXTRANONCE2_SIZE,
    Extranonce2Counter,
    encode_extranonce2,
    extranonce2_space,
)
from stratum_client.work.hashing import display_hex, dsha256
from stratum_client.work.header import (
    HEADER_PREFIX_SIZE,
    HEADER_SIZE,
    HeaderFields,
    build_header,
    header_order_to_prevhash,
    header_prefix,
    header_with_nonce,
    parse_header,
    prevhash_to_header_order,
)
from stratum_client.work.job import DEFAULT_VERSION_MASK, Job, Midstate, Work
from stratum_client.work.merkle import merkle_root
from stratum_client.work.midstate import MIDSTATE_BACKEND, sha256_midstate
from stratum_client.work.notify import parse_hex, parse_hex_u32, parse_notify
from stratum_client.work.share import ShareResult, check_share, check_work_nonce
from stratum_client.work.target import (
    DIFF1_TARGET,
    MAX_TARGET,
    difficulty_to_target,
    hash_to_int,
    meets_target,
    nbits_to_target,
    network_difficulty,
    share_difficulty,
    target_to_difficulty,
)
from stratum_client.work.versionroll import (
    apply_version_bits,
    increment_within_mask,
    mask_space,
    rolled_versions,
    version_bits,
)

__all__ = [
    "DEFAULT_VERSION_MASK",
    "DIFF1_TARGET",
    "HEADER_PREFIX_SIZE",
    "HEADER_SIZE",
    "MAX_EXTRANONCE2_SIZE",
    "MAX_TARGET",
    "MIDSTATE_BACKEND",
    "MIDSTATE_COUNTS",
    "Extranonce2Counter",
    "HeaderFields",
    "Job",
    "JobBuilder",
    "Midstate",
    "ShareResult",
    "Work",
    "apply_version_bits",
    "build_coinbase",
    "build_header",
    "build_work",
    "check_share",
    "check_work_nonce",
    "coinbase_txid",
    "difficulty_to_target",
    "display_hex",
    "dsha256",
    "encode_extranonce2",
    "extranonce2_space",
    "hash_to_int",
    "header_order_to_prevhash",
    "header_prefix",
    "header_with_nonce",
    "increment_within_mask",
    "mask_space",
    "meets_target",
    "merkle_root",
    "nbits_to_target",
    "network_difficulty",
    "parse_header",
    "parse_hex",
    "parse_hex_u32",
    "parse_notify",
    "prevhash_to_header_order",
    "rolled_versions",
    "sha256_midstate",
    "share_difficulty",
    "target_to_difficulty",
    "version_bits",
]
