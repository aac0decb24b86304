"""The dead-letter queue: every job that failed for good, and every message no task could take.

Entries live in Redis (a hash of JSON entries and a sorted set for their order), next to the results, so
they survive worker restarts and are visible from any host. An entry keeps what is needed to understand and
requeue the job: task name, arguments, error, attempts, timestamps. Arguments past `MAX_PAYLOAD_CHARS` of
JSON are kept cut short (a bounded copy, worker/bounds.py), and such an entry cannot be requeued: a dead
letter never holds a 100 MB input.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from ..bounds import Cut, bounded_copy, encoded_size
from ..config import Settings
from ..connections import connect
from ..keys import dead_entries_key, dead_order_key
from .contract import MAX_CHUNK_ITEMS

MAX_PAYLOAD_CHARS = 64 * 1024
WHOLE = Cut(max_string=MAX_PAYLOAD_CHARS, max_items=MAX_CHUNK_ITEMS, max_depth=6)  # what a kept payload may be
SHORT = Cut(max_string=512, max_items=20, max_depth=4)  # what is kept of a payload past that


@dataclass
class DeadLetter:
    """One job (or raw message) that will not run again unless requeued."""

    id: str
    reason: str  # "failed" (a job that failed for good) or "malformed" (a message no task could take)
    error: dict[str, Any]
    task: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    raw: str | None = None  # a malformed message's body, as far as it could be read
    headers: dict[str, Any] | None = None  # a malformed message's headers, cut short
    attempts: int = 1
    queue: str | None = None
    worker: str | None = None
    submitted_at: float | None = None
    failed_at: float = field(default_factory=time.time)
    truncated: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=repr)  # its fields are bounded copies

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def requeueable(self) -> bool:
        return self.task is not None and self.args is not None and not self.truncated


def bounded_payload(value: Any) -> tuple[Any, bool]:
    """Arguments as a dead letter keeps them: whole if they take at most `MAX_PAYLOAD_CHARS` of JSON, else a
    short copy; and whether they were cut. Costs no more than the bounds, however large `value` is."""
    whole, cut = bounded_copy(value, WHOLE)
    if not cut and encoded_size(whole) <= MAX_PAYLOAD_CHARS:
        return whole, False
    return bounded_copy(value, SHORT)[0], True


def new_id() -> str:
    return f"malformed-{uuid.uuid4().hex}"


class DeadLetters:
    """Read and write the dead-letter queue of one job queue."""

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.redis = client
        self.entries_key = dead_entries_key(queue)
        self.order_key = dead_order_key(queue)

    @classmethod
    def for_settings(cls, settings: Settings) -> DeadLetters:
        """The dead letters of `settings.queue`, in the Redis of `settings` (plain or Sentinel)."""
        return cls(connect(settings.redis_url, sentinel=settings.sentinel), settings.queue)

    def record(self, entry: DeadLetter, *, replace: bool = True) -> str:
        """Store an entry, and return its id. A job's entry replaces the one before it (one entry per job id);
        with `replace=False` (a malformed message, whose id anyone can choose) an existing entry stays and
        this one is stored under an id of its own."""
        text = entry.to_json()
        if not replace and not self.redis.hsetnx(self.entries_key, entry.id, text):
            entry.id = f"{entry.id[:200]}-{uuid.uuid4().hex[:8]}"
            text = entry.to_json()
            replace = True
        pipe = self.redis.pipeline()
        if replace:
            pipe.hset(self.entries_key, entry.id, text)
        pipe.zadd(self.order_key, {entry.id: entry.failed_at})
        pipe.execute()
        return entry.id

    def size(self) -> int:
        return int(self.redis.hlen(self.entries_key))

    def list(self, limit: int | None = None) -> list[DeadLetter]:
        """Oldest first."""
        ids: list[Any] = list(self.redis.zrange(self.order_key, 0, -1 if limit is None else limit - 1))
        if not ids:
            return []
        raw = self.redis.hmget(self.entries_key, ids)
        return [DeadLetter.from_json(text) for text in raw if text is not None]

    def get(self, entry_id: str) -> DeadLetter | None:
        text = self.redis.hget(self.entries_key, entry_id)
        return DeadLetter.from_json(text) if text is not None else None

    def remove(self, entry_id: str) -> bool:
        pipe = self.redis.pipeline()
        pipe.hdel(self.entries_key, entry_id)
        pipe.zrem(self.order_key, entry_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def purge(self) -> int:
        count = self.size()
        self.redis.delete(self.entries_key, self.order_key)
        return count
