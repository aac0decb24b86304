"""Checks on what crosses the sandbox boundary: input size and encoding, output size, UTF-8, batch framing."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat
from typing import TypeVar, cast

from ..errors import InvalidInput, InvalidOutput

_U32 = struct.Struct("<I")
A = TypeVar("A")
B = TypeVar("B")
E = TypeVar("E", bound=Exception)


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


def encode_inputs(inputs: Sequence[object], *, max_bytes: int) -> Sequence[bytes | InvalidInput]:
    """`encode_input` for each input of a chunk, a refused one as its error in place. When every input is
    plain text that encodes within the limit (the usual case) this is one pass in C, not a call per item."""
    if {str}.issuperset(map(type, inputs)):
        try:
            data = list(map(str.encode, cast("Sequence[str]", inputs)))  # strict UTF-8, as in encode_input
        except UnicodeEncodeError:
            data = None
        if data is not None and (not data or max(map(len, data)) <= max_bytes):
            return data
    return _each(partial(encode_input, max_bytes=max_bytes), inputs, InvalidInput)


def decode_outputs(raws: Sequence[bytes], *, max_bytes: int) -> Sequence[str | InvalidOutput]:
    """`decode_output` for each answer of a batch call, a refused one as its error in place. When every answer
    is within the limit and valid UTF-8 (the usual case) this is one pass in C, not a call per item."""
    if not raws or max(map(len, raws)) <= max_bytes:
        try:
            return list(map(str, raws, repeat("utf-8")))  # strict UTF-8, as in decode_output
        except UnicodeDecodeError:
            pass
    return _each(partial(decode_output, max_bytes=max_bytes), raws, InvalidOutput)


def _each(check: Callable[[A], B], values: Sequence[A], refused: type[E]) -> list[B | E]:
    """`check` of every value, or the `refused` error it raised, in order: the item-by-item way."""
    out: list[B | E] = []
    for value in values:
        try:
            out.append(check(value))
        except refused as exc:
            out.append(exc)
    return out


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
    size = len(block)
    if size < 4:
        raise InvalidOutput(f"batch output of {size} bytes has no item count")
    (count,) = _U32.unpack_from(block, 0)
    if count != expected:
        raise InvalidOutput(f"batch output has {count} items for {expected} inputs")
    items: list[bytes] = []
    append, unpack = items.append, _U32.unpack_from  # locals: this loop runs once per item of every chunk
    offset = 4
    for index in range(count):
        start = offset + 4
        if start > size:
            raise InvalidOutput(f"batch output item {index}: length header past the end of the block")
        length = unpack(block, offset)[0]
        if length > max_item_bytes:
            raise InvalidOutput(f"batch output item {index} is {length} bytes, over the limit of {max_item_bytes}")
        offset = start + length
        if offset > size:
            raise InvalidOutput(f"batch output item {index}: length {length} runs past the end of the block")
        append(block[start:offset])
    if offset != size:
        raise InvalidOutput(f"batch output has {size - offset} trailing bytes after {count} items")
    return items
