"""Extranonce2 encoding and the no-repeat counter."""

from __future__ import annotations

import pytest

from stratum_client.errors import WorkError
from stratum_client.work.extranonce import (
    Extranonce2Counter,
    encode_extranonce2,
    extranonce2_space,
)


def test_size_zero_has_exactly_one_empty_value() -> None:
    counter = Extranonce2Counter(0)
    assert counter.take() == b""
    with pytest.raises(WorkError, match="used"):
        counter.take()


def test_sizes_beyond_eight_bytes_are_zero_padded() -> None:
    assert encode_extranonce2(0x0102, 10).hex() == "02010000000000000000"
    assert extranonce2_space(16) == 1 << 64


def test_counter_hands_out_each_value_once_then_raises() -> None:
    counter = Extranonce2Counter(1)
    values = [counter.take() for _ in range(256)]
    assert len(set(values)) == 256
    assert counter.remaining == 0
    with pytest.raises(WorkError, match="new job"):
        counter.take()


def test_counter_can_start_late() -> None:
    counter = Extranonce2Counter(4, start=0xFFFFFFFE)
    assert counter.take().hex() == "feffffff"
    assert counter.take().hex() == "ffffffff"
    with pytest.raises(WorkError):
        counter.take()


@pytest.mark.parametrize(("counter", "size"), [(-1, 4), (1 << 32, 4), (256, 1), (1, 0), (0, 33)])
def test_out_of_range_values_are_refused(counter: int, size: int) -> None:
    with pytest.raises(WorkError):
        encode_extranonce2(counter, size)


@pytest.mark.parametrize(("size", "start"), [(-1, 0), (33, 0), (1, 257), (1, -1)])
def test_bad_counter_setups_are_refused(size: int, start: int) -> None:
    with pytest.raises(WorkError):
        Extranonce2Counter(size, start)
