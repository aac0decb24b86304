"""Large byte strings in Redis, in pieces: module bytes and precompiled artifacts of any size (tens of MB).

A blob is one hash: `size`, `chunks`, and the chunks `0` .. `chunks - 1` of `REGISTRY_CHUNK_BYTES` each, read
and written a few chunks per round trip, so neither side ever sends one huge value (which would stall Redis
for everyone). A blob is written under a temporary key and renamed into place in one transaction, so a
reader sees all of it or none of it; an abandoned upload expires. The same content is stored once: a blob
that exists already is kept (its name is its content's hash).
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

from ..errors import ModuleRejected
from ..keys import REGISTRY_CHUNK_BYTES, registry_upload_key

CHUNKS_PER_TRIP = 8  # chunks sent or fetched per round trip (8 MiB)
UPLOAD_TTL_S = 3600  # an upload nobody finished is dropped after this long


def put_blob(client: redis.Redis, key: str, data: bytes, **fields: str) -> bool:
    """Store `data` (and `fields`) at `key` unless a blob is there already; True when this call stored it."""
    if client.exists(key):
        client.persist(key)  # a rename whose PERSIST never ran (a publisher died in between) keeps its blob
        return False
    upload = registry_upload_key(uuid.uuid4().hex)
    chunks = [data[i : i + REGISTRY_CHUNK_BYTES] for i in range(0, len(data), REGISTRY_CHUNK_BYTES)] or [b""]
    try:
        for first in range(0, len(chunks), CHUNKS_PER_TRIP):
            with client.pipeline(transaction=False) as pipe:
                for index in range(first, min(first + CHUNKS_PER_TRIP, len(chunks))):
                    pipe.hset(upload, str(index), chunks[index])
                pipe.expire(upload, UPLOAD_TTL_S)
                pipe.execute()
        head: dict[Any, Any] = {"size": str(len(data)), "chunks": str(len(chunks)), **fields}
        client.hset(upload, mapping=head)
        with client.pipeline(transaction=True) as pipe:
            pipe.renamenx(upload, key)
            pipe.persist(key)
            renamed, _ = pipe.execute()
    except BaseException:
        client.delete(upload)
        raise
    if not renamed:  # another publisher stored the same content meanwhile
        client.delete(upload)
    return bool(renamed)


def get_blob(
    client: redis.Redis, key: str, *, max_bytes: int, what: str, fields: tuple[str, ...] = ()
) -> tuple[bytes, dict[str, str]] | None:
    """The blob at `key` and the small `fields` stored with it, or None when there is none. A blob larger
    than `max_bytes` or not whole is `ModuleRejected` (`what` names it in the message)."""
    size_raw, chunks_raw, *extra = client.hmget(key, ["size", "chunks", *fields])
    if size_raw is None or chunks_raw is None:
        return None
    try:
        size, count = int(size_raw), int(chunks_raw)
    except ValueError:
        raise ModuleRejected(f"{what}: its stored size is not a number") from None
    if size > max_bytes:
        raise ModuleRejected(f"{what} is {size} bytes, more than the {max_bytes} this host accepts")
    if count != max(1, -(-size // REGISTRY_CHUNK_BYTES)):
        raise ModuleRejected(f"{what}: {count} stored chunks cannot hold {size} bytes")
    parts: list[bytes] = []
    for first in range(0, count, CHUNKS_PER_TRIP):
        with client.pipeline(transaction=False) as pipe:
            for index in range(first, min(first + CHUNKS_PER_TRIP, count)):
                pipe.hget(key, str(index))
            parts.extend(part or b"" for part in pipe.execute())
    data = b"".join(parts)
    if len(data) != size:
        raise ModuleRejected(f"{what}: {len(data)} bytes stored of {size}")
    return data, {name: text(value or b"") for name, value in zip(fields, extra, strict=True)}


def text(value: bytes | str) -> str:
    """A Redis reply as text (clients made by `connect` answer bytes)."""
    return value if isinstance(value, str) else value.decode(errors="replace")
