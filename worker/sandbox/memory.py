"""Bounds-checked access to a guest's linear memory.

Never trust a pointer or a length that comes from a module: every access checks `ptr + len <= size`
in Python integers (no wrap-around at 2**32), before any byte is copied. `Memory.read` is not used because
it follows slice rules (a range past the end is silently truncated, a negative start reads from the end).
The base address is fetched again for every access since any call into the guest may grow (move) memory.
"""

from __future__ import annotations

import ctypes

import wasmtime

from ..errors import InvalidOutput

U32_MAX = 0xFFFF_FFFF


class GuestMemory:
    """One instance's exported memory, in one store."""

    __slots__ = ("memory", "store")

    def __init__(self, memory: wasmtime.Memory | None, store: wasmtime.Store) -> None:
        self.memory = memory
        self.store = store

    @property
    def size(self) -> int:
        """Current size in bytes; 0 for a module that exports no memory (every access then fails)."""
        return 0 if self.memory is None else self.memory.data_len(self.store)

    def _base(self) -> int:
        assert self.memory is not None  # only reached after a successful bounds check
        return ctypes.addressof(self.memory.data_ptr(self.store).contents)

    def base(self) -> int:
        """The address of byte 0 of a memory whose `size` is not 0, valid until the guest next runs (it may
        grow, and so move, the memory): for a caller that reads several spans checked against one `size`."""
        return self._base()

    def check(self, ptr: int, length: int, what: str) -> None:
        """Raise `InvalidOutput` unless [ptr, ptr+length) lies inside the memory."""
        size = self.size
        if ptr < 0 or length < 0 or ptr > U32_MAX or length > U32_MAX:
            raise InvalidOutput(f"{what}: pointer {ptr:#x} / length {length} is not a valid u32")
        if ptr + length > U32_MAX + 1:
            raise InvalidOutput(f"{what}: pointer {ptr:#x} + length {length} wraps around 2**32")
        if ptr + length > size:
            raise InvalidOutput(
                f"{what}: range [{ptr:#x}, {ptr + length:#x}) is outside the module's memory of {size} bytes"
            )

    def read(self, ptr: int, length: int, what: str) -> bytes:
        self.check(ptr, length, what)
        if length == 0:
            return b""
        return ctypes.string_at(self._base() + ptr, length)

    def write(self, ptr: int, data: bytes, what: str) -> None:
        self.check(ptr, len(data), what)
        if data:
            ctypes.memmove(self._base() + ptr, data, len(data))

    def read_u32_pair(self, ptr: int, what: str) -> tuple[int, int]:
        """An 8-byte `[a: u32 LE][b: u32 LE]` record."""
        raw = self.read(ptr, 8, what)
        return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")

    def read_cstring(self, ptr: int, max_len: int, what: str) -> bytes:
        """A NUL-terminated string of at most `max_len` bytes, the NUL within the memory."""
        size = self.size
        if ptr <= 0 or ptr >= size:
            raise InvalidOutput(f"{what}: pointer {ptr:#x} is outside the module's memory of {size} bytes")
        window = min(size - ptr, max_len + 1)
        raw = ctypes.string_at(self._base() + ptr, window)
        end = raw.find(b"\0")
        if end < 0:
            if window > max_len:
                raise InvalidOutput(f"{what}: no NUL within {max_len} bytes (the output size limit)")
            raise InvalidOutput(f"{what}: string at {ptr:#x} is not NUL-terminated before the end of memory")
        return raw[:end]
