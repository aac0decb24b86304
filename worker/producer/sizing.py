"""How many inputs a batch puts in its next chunk.

A chunk should take about `WASMQ_CHUNK_TARGET_S` in the sandbox: long enough that the message overhead is
small next to the calls, short enough that a single job waiting for a pool process (batch chunks run only when
no single job is queued, Settings.lanes) never waits long. A batch starts with small chunks, measures the time
each chunk took in the sandbox (the `seconds` of its result) and sizes the next ones by it, growing at most
fourfold a step, never above `WASMQ_CHUNK_SIZE` (the time limits and grace periods are set for that many).
A caller's fixed chunk size is taken as it is.
"""

from __future__ import annotations

from ..config import Settings

START = 64  # inputs in the first chunks, before anything is measured
GROWTH = 4  # at most this factor from one size to the next


class ChunkSizer:
    def __init__(self, settings: Settings, fixed: int | None = None) -> None:
        self.largest = fixed if fixed is not None else settings.chunk_size
        self.target_s = settings.chunk_target_s
        self.fixed = fixed is not None
        self._size = self.largest if self.fixed else min(START, self.largest)
        self._per_item_s: float | None = None

    def size(self) -> int:
        return self._size

    def observe(self, items: int, seconds: object) -> None:
        """A chunk of `items` took `seconds` in the sandbox (as its result says; ignored if not a number)."""
        if self.fixed or items <= 0 or not isinstance(seconds, int | float) or seconds < 0:
            return
        per_item = max(float(seconds), 1e-6) / items
        # A moving average, so that one slow chunk (a cold cache, a busy host) does not halve the next ones.
        self._per_item_s = per_item if self._per_item_s is None else 0.7 * self._per_item_s + 0.3 * per_item
        wanted = int(self.target_s / self._per_item_s)
        self._size = max(1, min(self.largest, wanted, self._size * GROWTH))
