"""The dead-letter queue: every job that failed for good, and every message no task could take.

Entries live in Redis (a hash of JSON entries and a sorted set for their order), next to the results, so
they survive worker restarts and are visible from any host. An entry keeps what is needed to understand and
requeue the job: task name, arguments (truncated past `MAX_PAYLOAD_CHARS`), error, attempts, timestamps.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from ..config import Settings
from ..connections import connect
from ..keys import dead_entries_key, dead_order_key

MAX_PAYLOAD_CHARS = 64 * 1024


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
    attempts: int = 1
    queue: str | None = None
    worker: str | None = None
    submitted_at: float | None = None
    failed_at: float = field(default_factory=time.time)
    truncated: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=repr)

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def requeueable(self) -> bool:
        return self.task is not None and self.args is not None and not self.truncated


def bounded_payload(args: Any) -> tuple[Any, bool]:
    """The arguments as they can be stored: unchanged if small, else a truncated JSON text."""
    try:
        text = json.dumps(args, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(args)
    if len(text) <= MAX_PAYLOAD_CHARS:
        return args, False
    return text[:MAX_PAYLOAD_CHARS], True


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

    def record(self, entry: DeadLetter) -> str:
        """Store (or replace: one entry per job id) an entry."""
        pipe = self.redis.pipeline()
        pipe.hset(self.entries_key, entry.id, entry.to_json())
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
