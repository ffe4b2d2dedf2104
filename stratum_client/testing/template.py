"""The block template the local pool hands out, and how it rebuilds a submit's header.

Jobs come from a real 2023 block template (the 13-branch vector in tests/data), with
synthetic prevhashes for new blocks. The pool turns a submit's version bits into the
header version by one of the three rules real pools use (:data:`VersionRule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from stratum_client.work.coinbase import build_coinbase
from stratum_client.work.hashing import dsha256
from stratum_client.work.header import build_header
from stratum_client.work.merkle import merkle_root

__all__ = [
    "GRANTED_MASK",
    "MAINNET_NBITS",
    "MAINNET_VERSION",
    "REGTEST_NBITS",
    "REGTEST_VERSION",
    "BlockRule",
    "PoolJob",
    "VersionRule",
    "rebuild_header",
    "rebuilt_version",
]

COINB1: Final = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4b03"
    "89130cfabe6d6d5cbab26a2599e92916edec5657a94a0708ddb970f5c45b5d"
)
COINB2: Final = bytes.fromhex(
    "31650707758de07b010000000000001cfd7038212f736c7573682f000000000379ad0c2a000000001976a914"
    "7c154ed1dc59609e3d26abb2df2ea3d587cd8c4188ac00000000000000002c6a4c2952534b424c4f434b3ae7"
    "25d3994b811572c1f345deb98b56b465ef8e153ecbbd27fa37bf1b005161380000000000000000266a24aa21"
    "a9ed63b06a7946b190a3fda1d76165b25c9b883bcc6621b040773050ee2a1bb18f1800000000"
)
BRANCH: Final = tuple(
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
MAINNET_VERSION: Final = 0x20000000
MAINNET_NBITS: Final = 0x1705AE3A
"""The template's own nbits (mainnet, 2023): no emulated chip finds such a block."""
GRANTED_MASK: Final = 0x1FFFE000
"""The version-rolling mask the pool grants (BIP320's, as public-pool grants it)."""

REGTEST_VERSION: Final = 0x30000000
"""Bitcoin Core's regtest template version (testdummy's bit 28 set): strict mode's default."""
REGTEST_NBITS: Final = 0x207FFFFF
"""Bitcoin Core's regtest nbits (network difficulty 4.66e-10): nearly every nonce a chip
reports is a block candidate, most of them below any pool difficulty."""

BlockRule = Literal["difficulty", "block"]
"""What a pool checks first: ``difficulty`` refuses a share below the session difficulty
even if it is a block (public-pool); ``block`` takes a block whatever the difficulty
(ckpool, miningcore, node-stratum-pool)."""

VersionRule = Literal["replace", "xor", "or"]
"""How the pool turns submitted version bits into the header version: ``replace`` is
BIP310's ``(job & ~mask) | bits`` (miningcore), ``xor`` is public-pool's ``job ^ bits``,
``or`` is ckpool's and DATUM's ``job | bits``."""


@dataclass(frozen=True, slots=True)
class PoolJob:
    """A job as the pool issued it."""

    job_id: str
    prevhash: bytes
    ntime: int
    clean: bool
    version: int = MAINNET_VERSION
    """The template version the job announces (and the pool rebuilds headers from)."""
    nbits: int = MAINNET_NBITS
    """The network target the job announces."""

    def notify_params(self) -> list[Any]:
        return [
            self.job_id,
            self.prevhash.hex(),
            COINB1.hex(),
            COINB2.hex(),
            [b.hex() for b in BRANCH],
            f"{self.version:08x}",
            f"{self.nbits:08x}",
            f"{self.ntime:08x}",
            self.clean,
        ]


def rebuilt_version(rule: VersionRule, template: int, bits: int, mask: int) -> int:
    """The header version a pool following ``rule`` hashes for submitted ``bits``."""
    if rule == "xor":
        return template ^ bits
    if rule == "or":
        return template | bits
    return (template & ~mask) | (bits & mask)


def rebuild_header(
    job: PoolJob, extranonce: tuple[bytes, bytes], ntime: int, nonce: int, version: int
) -> bytes:
    """The 80-byte header of a submit on ``job`` (``extranonce`` is extranonce1 and 2),
    as the pool rebuilds it."""
    coinbase = build_coinbase(COINB1, extranonce[0], extranonce[1], COINB2)
    root = merkle_root(dsha256(coinbase), BRANCH)
    return build_header(version, job.prevhash, root, ntime, job.nbits, nonce)
