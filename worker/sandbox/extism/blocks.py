"""The memory blocks of one Extism call, owned by the host: what the kernel's allocator is inside Extism.

An Extism plugin keeps its input, its output, config values, vars and log lines in blocks addressed by u64
offsets, outside its own linear memory; it reaches them only through the kernel's load/store functions. Here a
block is a Python `bytearray`, at an offset handed out once and never reused (a stale or made-up offset is
unknown, never another block's bytes). Every access must lie inside one live block, and the live bytes plus a
fixed overhead per block are bounded by the call's cap, so a plugin cannot make the host allocate without
limit. Offsets stay below 2**63 so they survive the kernel's signed i64 parameters.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from ...errors import InvalidOutput, MemoryLimitExceeded, ModuleTrap

# Charged per block on top of its bytes: about what CPython spends on one bytearray and its index entries,
# so a million tiny blocks cost what they really cost.
BLOCK_OVERHEAD: Final = 128
FIRST_OFFSET: Final = 0x1_0000  # 0 is the null handle; small numbers stay unknown so a stray one is caught
_ALIGN: Final = 8
_MAX_OFFSET: Final = (1 << 63) - 1


class BlockStore:
    """Live blocks by start offset, bounded to `limit` bytes (data plus `BLOCK_OVERHEAD` per block)."""

    __slots__ = ("_blocks", "_next", "_starts", "cache_end", "cache_start", "cached", "limit", "peak", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._blocks: dict[int, bytearray] = {}
        self._starts: list[int] = []  # sorted: offsets only grow, freed ones are removed
        self._next = FIRST_OFFSET
        # The last block an access hit: plugins walk one block byte by byte, so most look-ups end here
        # (the kernel's raw load/store functions read these three directly).
        self.cache_start = self.cache_end = 0
        self.cached = bytearray()

    def __len__(self) -> int:
        return len(self._blocks)

    def alloc(self, length: int) -> int:
        """A new zeroed block of `length` bytes, or 0 for length 0 (the kernel's answer)."""
        if length <= 0:
            return 0
        cost = length + BLOCK_OVERHEAD
        if self.used + cost > self.limit:
            raise MemoryLimitExceeded(
                f"kernel alloc of {length} bytes would take the call's memory blocks to {self.used + cost} bytes, "
                f"over the cap of {self.limit}",
                limit="kernel_blocks",
            )
        start = self._next
        end = start + length
        if end + _ALIGN > _MAX_OFFSET:  # unreachable under any sane cap; refuse rather than wrap
            raise MemoryLimitExceeded("kernel offsets exhausted", limit="kernel_blocks")
        self._blocks[start] = bytearray(length)
        self._starts.append(start)
        self._next = (end + 2 * _ALIGN - 1) // _ALIGN * _ALIGN  # a gap: an access one past a block is caught
        self.used += cost
        self.peak = max(self.peak, self.used)
        return start

    def new(self, data: bytes) -> int:
        """A block holding a copy of `data` (0 for empty data, as the kernel does)."""
        offset = self.alloc(len(data))
        if offset:
            self._blocks[offset][:] = data
        return offset

    def free(self, offset: int) -> None:
        """Release a block; an unknown offset is ignored, as the kernel ignores it."""
        buf = self._blocks.pop(offset, None)
        if buf is None:
            return
        del self._starts[bisect_right(self._starts, offset) - 1]
        self.used -= len(buf) + BLOCK_OVERHEAD
        if self.cache_start == offset:
            self.cache_start = self.cache_end = 0
            self.cached = bytearray()

    def length(self, offset: int) -> int:
        """The length of the block starting at `offset`; 0 when there is none (the kernel's `length`)."""
        buf = self._blocks.get(offset)
        return 0 if buf is None else len(buf)

    def get(self, offset: int) -> bytearray | None:
        """The block starting exactly at `offset`, if live."""
        return self._blocks.get(offset)

    def handle(self, offset: int, what: str) -> bytes:
        """The bytes of the block a kernel function was handed (offset 0: empty), or a trap."""
        if offset == 0:
            return b""
        buf = self._blocks.get(offset)
        if buf is None:
            raise ModuleTrap(
                f"kernel {what}: {offset:#x} is not the offset of a live memory block", trap_code="bad_handle"
            )
        return bytes(buf)

    def locate(self, address: int, size: int, what: str) -> tuple[bytearray, int]:
        """The block holding [address, address+size) and the position inside it, or a trap."""
        if self.cache_start <= address and address + size <= self.cache_end:
            return self.cached, address - self.cache_start
        index = bisect_right(self._starts, address) - 1
        if index >= 0:
            start = self._starts[index]
            buf = self._blocks[start]
            if address + size <= start + len(buf):
                self.cache_start, self.cache_end, self.cached = start, start + len(buf), buf
                return buf, address - start
        raise ModuleTrap(
            f"kernel {what}: [{address:#x}, {address + size:#x}) is not inside a live memory block",
            trap_code="bad_offset",
        )

    def span(self, offset: int, length: int, what: str) -> None:
        """Check that [offset, offset+length) lies in one live block (`output_set`): else `InvalidOutput`."""
        if length == 0:
            return
        try:
            self.locate(offset, length, what)
        except ModuleTrap:
            raise InvalidOutput(
                f"{what}: [{offset:#x}, {offset + length:#x}) is not inside a live memory block"
            ) from None

    def read(self, offset: int, length: int) -> bytes:
        """The bytes of a span `span` accepted (empty for length 0)."""
        if length == 0:
            return b""
        buf, at = self.locate(offset, length, "read")
        return bytes(buf[at : at + length])
