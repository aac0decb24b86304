"""Checks on what crosses the sandbox boundary: input size and encoding, output size, UTF-8, batch framing."""

from __future__ import annotations

import struct

from ..errors import InvalidInput, InvalidOutput

_U32 = struct.Struct("<I")


def encode_input(text: object, *, max_bytes: int, what: str = "input") -> bytes:
    """A job's input as UTF-8, refused when it is not text or is over the module's input limit."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a string, not {type(text).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not encodable as UTF-8 (lone surrogate at {exc.start})") from None
    if len(data) > max_bytes:
        raise InvalidInput(f"{what} is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def decode_output(data: bytes, *, max_bytes: int, what: str = "output") -> str:
    """The module's answer as text: at most `max_bytes`, and valid UTF-8."""
    if len(data) > max_bytes:
        raise InvalidOutput(f"{what} is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidOutput(f"{what} is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None


def check_output_length(length: int, *, max_bytes: int, what: str = "output") -> None:
    """Refuse an oversize answer before copying it out of the guest."""
    if length > max_bytes:
        raise InvalidOutput(f"{what} length {length} is over the limit of {max_bytes} bytes")


def encode_frames(items: list[bytes]) -> bytes:
    """`[count: u32 LE]` then `[len: u32 LE][bytes]` per item."""
    parts = [_U32.pack(len(items))]
    for item in items:
        parts.append(_U32.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def decode_frames(block: bytes, *, expected: int, max_item_bytes: int) -> list[bytes]:
    """Parse a framed answer, refusing a wrong count, a length outside the block, or trailing bytes."""
    if len(block) < 4:
        raise InvalidOutput(f"batch output of {len(block)} bytes has no item count")
    (count,) = _U32.unpack_from(block, 0)
    if count != expected:
        raise InvalidOutput(f"batch output has {count} items for {expected} inputs")
    items = []
    offset = 4
    for index in range(count):
        if offset + 4 > len(block):
            raise InvalidOutput(f"batch output item {index}: length header past the end of the block")
        (length,) = _U32.unpack_from(block, offset)
        offset += 4
        if length > max_item_bytes:
            raise InvalidOutput(f"batch output item {index} is {length} bytes, over the limit of {max_item_bytes}")
        if offset + length > len(block):
            raise InvalidOutput(f"batch output item {index}: length {length} runs past the end of the block")
        items.append(block[offset : offset + length])
        offset += length
    if offset != len(block):
        raise InvalidOutput(f"batch output has {len(block) - offset} trailing bytes after {count} items")
    return items
