"""kombu's `compression` message header, bounded: no decompression bomb reaches the worker's memory.

kombu decompresses a body named compressed (header `compression`: zlib/gzip, bzip2, lzma/xz, and brotli or
zstd where installed) while it builds the `Message`, before any consumer hook, and in one call: 200 MB of
zeros in a 200 KB zlib body would all be made. `install` replaces every registered decoder: zlib, bzip2 and
lzma stop after `limit` bytes and refuse the message; other formats are refused outright. A refused body
becomes a decode error, which the consumer dead-letters (worker/queue/consumer.py).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from kombu import compression

from ..errors import MalformedMessage


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


BOUNDED: dict[str, Callable[[], _Decompressor]] = {
    "application/x-gzip": zlib.decompressobj,  # kombu's "gzip" and "zlib" are both zlib streams
    "application/x-bz2": bz2.BZ2Decompressor,
    "application/x-lzma": lzma.LZMADecompressor,
}


def bounded_decoder(content_type: str, make: Callable[[], _Decompressor], limit: int) -> Callable[[Any], bytes]:
    def decode(body: Any) -> bytes:
        data = body if isinstance(body, bytes) else bytes(body, "utf-8") if isinstance(body, str) else bytes(body)
        out = make().decompress(data, limit + 1)
        if len(out) > limit:
            raise MalformedMessage(
                f"{content_type} body decompresses to more than {limit} bytes (WASMQ_MAX_MESSAGE_BYTES)"
            )
        return out

    return decode


def refusing_decoder(content_type: str) -> Callable[[Any], bytes]:
    def decode(body: Any) -> bytes:
        raise MalformedMessage(f"compression {content_type} is not accepted (zlib, bzip2 or lzma only)")

    return decode


def install(limit: int) -> None:
    """Make every decoder kombu has registered stop at `limit` bytes, or refuse (the last call's limit holds)."""
    for content_type in list(compression.encoders()):
        encoder, _ = compression.get_encoder(content_type)
        make = BOUNDED.get(content_type)
        decoder = bounded_decoder(content_type, make, limit) if make else refusing_decoder(content_type)
        aliases = [alias for alias, target in compression._aliases.items() if target == content_type]
        compression.register(encoder, decoder, content_type, aliases=aliases)
