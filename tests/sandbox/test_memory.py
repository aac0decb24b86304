"""Bounds checks on a real wasmtime memory, and the input/output checks at the sandbox boundary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.errors import InvalidInput, InvalidOutput
from worker.sandbox.memory import U32_MAX, GuestMemory
from worker.sandbox.validate import check_output_length, decode_output, encode_input

PAGE = 65_536


@pytest.fixture(scope="module")
def guest() -> Iterator[GuestMemory]:
    """One page of real linear memory, with a few known bytes."""
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 4)))
    mem = GuestMemory(memory, store)
    mem.write(100, b"hello\0world", "setup")
    mem.write(PAGE - 3, b"abc", "setup")  # no NUL up to the end of memory
    yield mem
    store.close()


def test_size_is_the_current_memory_size(guest: GuestMemory) -> None:
    assert guest.size == PAGE


@pytest.mark.parametrize(
    ("ptr", "length"),
    [
        (0, 0),
        (0, PAGE),
        (PAGE, 0),
        (PAGE - 1, 1),
        (100, 11),
    ],
)
def test_ranges_inside_memory_are_readable(guest: GuestMemory, ptr: int, length: int) -> None:
    assert len(guest.read(ptr, length, "test")) == length


@pytest.mark.parametrize(
    ("ptr", "length", "fragment"),
    [
        (PAGE, 1, "outside"),  # one past the end
        (PAGE - 2, 10, "outside"),  # runs past the end
        (PAGE + 1, 0, "outside"),  # empty range that starts past the end
        (0xFFFF_0000, 5, "outside"),
        (16, 0xFFFF_FFF8, "wraps"),  # 16 + len overflows u32 to 8
        (0xFFFF_FFF0, 0x20, "wraps"),  # end overflows to 0x10
        (-1, 1, "not a valid u32"),  # a negative start would read from the end with slice rules
        (0, -1, "not a valid u32"),
        (U32_MAX + 1, 0, "not a valid u32"),
        (0, U32_MAX + 1, "not a valid u32"),
    ],
)
def test_bad_ranges_are_invalid_output(guest: GuestMemory, ptr: int, length: int, fragment: str) -> None:
    with pytest.raises(InvalidOutput) as info:
        guest.read(ptr, length, "answer")
    assert fragment in info.value.message
    assert info.value.message.startswith("answer:")


@pytest.mark.parametrize(("ptr", "length"), [(PAGE, 1), (PAGE - 2, 10), (0xFFFF_FFF0, 0x20), (-1, 1)])
def test_writes_outside_memory_are_refused(guest: GuestMemory, ptr: int, length: int) -> None:
    with pytest.raises(InvalidOutput):
        guest.write(ptr, b"x" * length, "alloc() result")


def test_reads_see_writes(guest: GuestMemory) -> None:
    assert guest.read(100, 11, "test") == b"hello\0world"
    guest.write(2000, (7).to_bytes(4, "little") + (9).to_bytes(4, "little"), "test")
    assert guest.read_u32_pair(2000, "record") == (7, 9)


def test_u32_pair_must_fit(guest: GuestMemory) -> None:
    with pytest.raises(InvalidOutput):
        guest.read_u32_pair(PAGE - 4, "record")


def test_cstring_stops_at_nul(guest: GuestMemory) -> None:
    assert guest.read_cstring(100, 64, "c") == b"hello"
    assert guest.read_cstring(105, 64, "c") == b""
    assert guest.read_cstring(100, 5, "c") == b"hello"  # NUL exactly at max_len is fine


@pytest.mark.parametrize(
    ("ptr", "max_len", "fragment"),
    [
        (100, 4, "no NUL within 4 bytes"),
        (PAGE - 3, 64, "not NUL-terminated"),
        (0, 64, "outside"),  # NULL
        (PAGE, 64, "outside"),
        (PAGE + 100, 64, "outside"),
    ],
)
def test_bad_cstrings_are_invalid_output(guest: GuestMemory, ptr: int, max_len: int, fragment: str) -> None:
    with pytest.raises(InvalidOutput, match=fragment):
        guest.read_cstring(ptr, max_len, "c")


def test_memory_growth_is_seen_by_later_checks() -> None:
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2)))
    mem = GuestMemory(memory, store)
    with pytest.raises(InvalidOutput):
        mem.read(PAGE, 1, "before")
    memory.grow(store, 1)
    mem.write(2 * PAGE - 2, b"ok", "after")
    assert mem.read(2 * PAGE - 2, 2, "after") == b"ok"
    store.close()


def test_module_without_memory_refuses_every_access() -> None:
    store = wasmtime.Store()
    mem = GuestMemory(None, store)
    assert mem.size == 0
    assert mem.read(0, 0, "empty") == b""
    with pytest.raises(InvalidOutput):
        mem.read(0, 1, "x")
    with pytest.raises(InvalidOutput):
        mem.read_cstring(1, 8, "x")
    store.close()


@settings(max_examples=100, deadline=None)
@given(ptr=st.integers(-(2**33), 2**33), length=st.integers(-(2**33), 2**33))
def test_check_accepts_exactly_the_in_bounds_ranges(guest: GuestMemory, ptr: int, length: int) -> None:
    inside = 0 <= ptr and 0 <= length and ptr + length <= PAGE
    try:
        guest.check(ptr, length, "p")
    except InvalidOutput:
        assert not inside
    else:
        assert inside


# -- input and output checks -------------------------------------------------------------------------


def test_encode_input() -> None:
    assert encode_input("Zoë", max_bytes=4) == "Zoë".encode()
    with pytest.raises(InvalidInput, match="over the limit"):
        encode_input("Zoë", max_bytes=3)
    with pytest.raises(InvalidInput, match="must be a string"):
        encode_input(b"Zoe", max_bytes=10)
    with pytest.raises(InvalidInput, match="surrogate"):
        encode_input("\udc00", max_bytes=10)


def test_decode_output() -> None:
    assert decode_output("héllo".encode(), max_bytes=6) == "héllo"
    with pytest.raises(InvalidOutput, match="over the limit"):
        decode_output(b"x" * 7, max_bytes=6)
    for bad in (b"\xff\xfe", b"abc\xc3", b"\xed\xa0\x80"):  # invalid start, truncated, encoded surrogate
        with pytest.raises(InvalidOutput, match="UTF-8"):
            decode_output(bad, max_bytes=64)


def test_check_output_length() -> None:
    check_output_length(10, max_bytes=10)
    with pytest.raises(InvalidOutput):
        check_output_length(11, max_bytes=10)
