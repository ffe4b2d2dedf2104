"""The test data of hardware.md section 4 (ESP-Miner's unit tests), recomputed here."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from stratum_client.work import (
    Job,
    JobBuilder,
    build_header,
    check_share,
    display_hex,
    dsha256,
    encode_extranonce2,
    increment_within_mask,
    merkle_root,
    network_difficulty,
    sha256_midstate,
    share_difficulty,
)

T2_COINB1 = (
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4b0389"
    "130cfabe6d6d5cbab26a2599e92916edec5657a94a0708ddb970f5c45b5d"
)
T2_COINB2 = (
    "31650707758de07b010000000000001cfd7038212f736c7573682f000000000379ad0c2a000000001976a914"
    "7c154ed1dc59609e3d26abb2df2ea3d587cd8c4188ac00000000000000002c6a4c2952534b424c4f434b3ae7"
    "25d3994b811572c1f345deb98b56b465ef8e153ecbbd27fa37bf1b005161380000000000000000266a24aa21"
    "a9ed63b06a7946b190a3fda1d76165b25c9b883bcc6621b040773050ee2a1bb18f1800000000"
)
T2_BRANCH = [
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
]
T2_HEADER = (
    "040000204595850c738349a3fa5274a511b72ec265a4f23d5243050000000000000000005bdc1968499c3393"
    "873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778ebb52570643aae0517d19e020a"
)
T2_MIDSTATE = "acd5e4b16adbd0cdbedcec318f5deb700b4c5f48b4111603c83e689946a9a88f"

BM1397_HEADER = (
    "0400002035fd44bf837bdc13c6e5607db472b528a804d248490700000000000000000000cd1be82132ef0d12"
    "053dcece1fa0247fcfdb61d4dbd3eb32ea9ef9b4c604a846d88b656401dd051700000000"
)
BM1397_MIDSTATE_LE_WORDS = "91DFEA52 8A9F7368 3D0D495D D6DD7415 E1CA21CB 411759E3 E05D7D5F F285314D"


def _t2_job(en2_size: int = 8) -> Job:
    return Job(
        job_id="0",
        prevhash=bytes.fromhex("0c859545a3498373a57452fac22eb7113df2a465000543520000000000000000"),
        coinb1=bytes.fromhex(T2_COINB1),
        coinb2=bytes.fromhex(T2_COINB2),
        merkle_branch=tuple(bytes.fromhex(b) for b in T2_BRANCH),
        version=0x20000004,
        nbits=0x1705AE3A,
        ntime=0x647025B5,
        clean_jobs=True,
        extranonce1=bytes.fromhex("12905085617eff8e"),
        extranonce2_size=en2_size,
        difficulty=512.0,
    )


def _words(state: bytes, fmt: str) -> list[int]:
    return list(struct.unpack(fmt, state))


def test_t1_nonce_diff_18() -> None:
    header = build_header(
        0x20000004,
        bytes.fromhex("d02b10fc0d4711eae1a805af50a8a83312a2215e00017f2b0000000000000000"),
        bytes.fromhex("6d0359c451434605c52a5a9ce074340be47c2c63840731f9edf1db3f26b1cdd9"),
        0x646FF1A9,
        0x1705AE3A,
        0x276E8947,
    )
    assert header.hex() == (
        "04000020fc102bd0ea11470daf05a8e133a8a8505e21a2122b7f010000000000000000006d0359c45143"
        "4605c52a5a9ce074340be47c2c63840731f9edf1db3f26b1cdd9a9f16f643aae051747896e27"
    )
    digest = dsha256(header)
    assert display_hex(digest) == "000000000e30101020e2ec8c9302a9ee56b2b2bef354b63489a0801f5789ed19"
    assert share_difficulty(digest) == pytest.approx(18.04, abs=0.005)


def test_t2_end_to_end() -> None:
    job = _t2_job()
    en2 = encode_extranonce2(1, 8)
    assert en2.hex() == "0100000000000000"
    assert JobBuilder(job).merkle_root(en2).hex() == (
        "5bdc1968499c3393873edf8e07a1c3a50a97fc3a9d1a376bbf77087dd63778eb"
    )
    result = check_share(job, en2, job.ntime, 0x0A029ED1)
    assert result.header.hex() == T2_HEADER
    assert int(result.share_difficulty) == 683
    assert result.meets_pool_difficulty
    assert check_share(job, encode_extranonce2(2, 8), job.ntime, 0x0A029ED1).header != (
        result.header
    )


def test_t2_split_extranonces_give_the_same_coinbase() -> None:
    whole = JobBuilder(_t2_job()).coinbase(bytes.fromhex("0100000000000000"))
    # the unit test splits en2 as 01000000 + 00000000 onto coinb2; the bytes are the same
    split = _t2_job(en2_size=4)
    split_builder = JobBuilder(dataclasses.replace(split, coinb2=bytes(4) + split.coinb2))
    assert split_builder.coinbase(bytes.fromhex("01000000")) == whole


def test_t2_midstate_is_h0_to_h7_big_endian() -> None:
    """The doc's T2 midstate equals the plain FIPS order H0..H7, each word big-endian."""
    header = bytes.fromhex(T2_HEADER)
    state = sha256_midstate(header[:64])
    assert state.hex() == T2_MIDSTATE
    assert JobBuilder(_t2_job()).build(bytes.fromhex("0100000000000000"), midstates=1).midstates[
        0
    ].state == bytes.fromhex(T2_MIDSTATE)
    assert sha256_midstate(header[1:65]).hex() != T2_MIDSTATE


def test_bm1397_header_and_little_endian_word_midstate() -> None:
    root = bytes.fromhex("cd1be82132ef0d12053dcece1fa0247fcfdb61d4dbd3eb32ea9ef9b4c604a846")
    prevhash = bytes.fromhex("bf44fd3513dc7b837d60e5c628b572b448d204a8000007490000000000000000")
    header = build_header(0x20000004, prevhash, root, 0x64658BD8, 0x1705DD01, 0)
    assert header.hex() == BM1397_HEADER
    state = sha256_midstate(header[:64])
    # bm1397.py prints each state word H0..H7 little-endian: same words, bytes swapped
    le_words = bytes.fromhex(BM1397_MIDSTATE_LE_WORDS.replace(" ", ""))
    assert _words(state, ">8I") == _words(le_words, "<8I")
    assert state != le_words
    # the BM1397 job frame sends H7..H0 big-endian: 4D3185F2 first, 52EADF91 last
    wire = b"".join(state[i : i + 4] for i in range(28, -4, -4))
    assert wire[:4].hex() == "4d3185f2"
    assert wire[-4:].hex() == "52eadf91"
    assert wire == le_words[::-1]
    assert root[28:].hex() == "c604a846"  # the frame's merkle tail


@pytest.mark.parametrize(
    ("coinb1", "en1", "coinb2", "branch", "root"),
    [
        pytest.param(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2002"
            "0862062f503253482f04b8864e5008e969579199999999072f736c7573682f0000000001",
            "00f2052a",
            "1976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
            """ae23055e00f0f697cc3640124812d96d4fe8bdfa03484c1c638ce5a1c0e9aa81
            980fb87cb61021dd7afd314fcb0dabd096f3d56a7377f6f320684652e7410a21
            a52e9868343c55ce405be8971ff340f562ae9ab6353f07140d01666180e19b52
            7435bdfa004e603953b2ed39f118803934d9cf17b06d979ceb682f2251bafac2
            2a91f061a22d27cb8f44eea79938fb241ebeb359891aa907f05ffde7ed44e52e
            302401f80eb5e958155135e25200bb8ea181ad2d05e804a531c7314d86403cdc
            318ecb6161eb9b4cfd802bd730e2d36c167ddf102e70aa7b4158e2870dd47392
            1114332a9858e0cf84b2425bb1e59eaabf91dd102d114aa443d57fc1b3beb0c9
            f43f38095c810613ed795a44d9fab02ff25269706f454885db9be05cdf9c06e1
            3e2fc26b27fddc39668b59099cd9635761bb72ed92404204e12bdff08b16fb75
            463c19427286342120039a83218fa87ce45448e246895abac11fff0036076758
            03d287f655813e540ddb9c4e7aeb922478662b0f5d8e9d0cbd564b20146bab76""",
            "adbcbc21e20388422198a55957aedfa0e61be0b8f2b87d7c08510bb9f099a893",
            id="M1",
        ),
        pytest.param(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2503"
            "777d07062f503253482f0405b8c75208f800880e000000000b2f436f696e48756e74722f0000000001",
            "603f352a",
            "1976a914c633315d376c20a973a758f7422d67f7bfed9c5888ac00000000",
            """f0dbca1ee1a9f6388d07d97c1ab0de0e41acdf2edac4b95780ba0a1ec14103b3
            8e43fd2988ac40c5d97702b7e5ccdf5b06d58f0e0d323f74dd5082232c1aedf7
            1177601320ac928b8c145d771dae78a3901a089fa4aca8def01cbff747355818
            9f64f3b0d9edddb14be6f71c3ac2e80455916e207ffc003316c6a515452aa7b4
            2d0b54af60fad4ae59ec02031f661d026f2bb95e2eeb1e6657a35036c017c595""",
            "5cc58f5e84aafc740d521b92a7bf72f4e56c4cc3ad1c2159f1d094f97ac34eee",
            id="M2",
        ),
    ],
)
def test_merkle_vectors(coinb1: str, en1: str, coinb2: str, branch: str, root: str) -> None:
    coinbase = bytes.fromhex(coinb1 + en1 + "01000000" + coinb2)
    entries = [bytes.fromhex(b) for b in branch.split()]
    assert merkle_root(dsha256(coinbase), entries).hex() == root
    assert merkle_root(dsha256(coinbase), entries[:-1]).hex() != root


@pytest.mark.parametrize(
    ("counter", "size", "expected"),
    [
        (0, 4, "00000000"),
        (1, 4, "01000000"),
        (2, 4, "02000000"),
        (0xFFFFFFFE, 4, "feffffff"),
        (0x7FFFFFFF, 6, "ffffff7f0000"),
    ],
)
def test_extranonce2_vectors(counter: int, size: int, expected: str) -> None:
    assert encode_extranonce2(counter, size).hex() == expected


def test_mask_increment_vector() -> None:
    version, seen = 0x20000004, []
    for _ in range(4):
        version = increment_within_mask(version, 0x00FFFF00)
        seen.append(version)
    assert seen == [0x20000104, 0x20000204, 0x20000304, 0x20000404]


def test_network_difficulty_vector() -> None:
    assert network_difficulty(0x1701CDFB) == pytest.approx(155973032196071.9, abs=0.05)
    assert network_difficulty(0x1701CDFC) != pytest.approx(155973032196071.9, abs=0.05)


def test_dsha256_hello() -> None:
    assert dsha256(b"hello").hex() == (
        "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
    )
    assert dsha256(b"hellp").hex()[:8] != "9595c9df"
