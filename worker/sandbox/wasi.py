"""Where a WASI module's stdout and stderr go: a bounded in-memory buffer per call (the rest is counted and
dropped), so a chatty module can neither fill the worker's disk or logs nor slow it down.

The WASI functions themselves (nothing granted, every call bounded) are in worker/sandbox/wasi_host.py.
"""

from __future__ import annotations


class CapturedStream:
    """Keeps the first `limit` bytes written to one stream, counts the rest."""

    __slots__ = ("chunks", "dropped", "kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def write(self, data: bytes) -> int:
        room = self.limit - self.kept
        if room > 0:
            part = data[:room]
            self.chunks.append(part)
            self.kept += len(part)
        self.dropped += max(0, len(data) - max(room, 0))
        return len(data)  # tell the guest everything was written, so it does not retry forever

    def skip(self, count: int) -> None:
        """Count `count` bytes the guest wrote past the limit without copying them."""
        self.dropped += count

    def text(self) -> str:
        out = b"".join(self.chunks).decode("utf-8", errors="replace")
        return out + (f"\n[... {self.dropped} more bytes dropped]" if self.dropped else "")
