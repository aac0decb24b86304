"""Worker nodes declared dead, and the messages handed back for them: the record `wasmq status` and the
metrics read.

The node that hands back a dead node's messages (worker/queue/liveness.py) records, per queue, one event in
a short list (`dead_nodes_key`, newest first, `DEAD_NODES_KEPT` kept) and adds to two running totals
(`dead_nodes_total_key`: `nodes`, `messages`), in the same transaction that removes the node from the
registry: an event is recorded once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from ..config import Settings
from ..connections import connect, is_redis_url
from ..keys import DEAD_NODES_KEPT, dead_nodes_key, dead_nodes_total_key

log = logging.getLogger("wasmq.monitoring")

SHOWN_JOB_IDS = 20  # job ids kept per event (the count is always complete)


@dataclass(frozen=True, kw_only=True)
class DeadNode:
    """One node declared dead, as one queue saw it."""

    node: str  # the node's id: its name and a token of its run
    name: str  # the worker's node name (`--hostname`)
    pid: int | None
    host: str | None
    declared_at: float  # unix time
    last_beat_at: float | None  # the node's last heartbeat, as it reported it
    by: str  # the node that handed its messages back
    messages: int  # messages of this queue handed back
    job_ids: list[str] = field(default_factory=list)  # the first `SHOWN_JOB_IDS` of them

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "name": self.name, "pid": self.pid, "host": self.host,
            "declared_at": round(self.declared_at, 3), "last_beat_at": self.last_beat_at, "by": self.by,
            "messages": self.messages, "job_ids": self.job_ids[:SHOWN_JOB_IDS],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadNode:
        last = data.get("last_beat_at")
        pid = data.get("pid")
        return cls(
            node=str(data.get("node", "")), name=str(data.get("name", "")),
            pid=pid if isinstance(pid, int) else None,
            host=str(data["host"]) if data.get("host") is not None else None,
            declared_at=float(data.get("declared_at") or 0.0),
            last_beat_at=float(last) if isinstance(last, int | float) else None,
            by=str(data.get("by", "")), messages=int(data.get("messages") or 0),
            job_ids=[str(i) for i in data.get("job_ids") or []],
        )  # fmt: skip


def record(pipe: Any, queue: str, event: DeadNode) -> None:
    """Queue the writes of one event on `pipe` (a MULTI pipeline: the caller executes it)."""
    pipe.lpush(dead_nodes_key(queue), json.dumps(event.to_dict(), separators=(",", ":")))
    pipe.ltrim(dead_nodes_key(queue), 0, DEAD_NODES_KEPT - 1)
    pipe.hincrby(dead_nodes_total_key(queue), "nodes", 1)
    pipe.hincrby(dead_nodes_total_key(queue), "messages", event.messages)


@dataclass(frozen=True)
class DeadNodes:
    """What one queue's record says: totals since counting began, and the most recent events."""

    nodes: int = 0
    messages: int = 0
    recent: list[DeadNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "messages": self.messages, "recent": [e.to_dict() for e in self.recent]}


def read(client: redis.Redis, queue: str, limit: int = 10) -> DeadNodes:
    """The record of `queue`: the totals and the `limit` latest events (entries that are not events are skipped)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(dead_nodes_total_key(queue))
    if limit > 0:
        pipe.lrange(dead_nodes_key(queue), 0, limit - 1)
    totals, *rest = pipe.execute()
    raw = rest[0] if rest else []
    recent = []
    for item in raw:
        try:
            data = json.loads(item)
            if isinstance(data, dict):
                recent.append(DeadNode.from_dict(data))
        except (ValueError, TypeError):
            continue
    return DeadNodes(_count(totals, "nodes"), _count(totals, "messages"), recent)


def read_for(
    settings: Settings, queues: Iterable[str], *, limit: int = 10, timeout_s: float = 2.0
) -> dict[str, DeadNodes | None]:
    """The record of each queue, from the broker's Redis (where liveness lives); None where it did not
    answer, and for every queue when the broker is not Redis (other brokers requeue on connection loss)."""
    names = sorted(set(queues))
    if not is_redis_url(settings.broker):
        return dict.fromkeys(names)
    try:
        with connect(settings.broker, sentinel=settings.sentinel, timeout_s=timeout_s) as client:
            return {name: read(client, name, limit) for name in names}
    except redis.RedisError as exc:
        log.debug("dead-node record unavailable: %s", exc)
        return dict.fromkeys(names)


def _count(totals: dict[Any, Any], name: str) -> int:
    value = totals.get(name.encode(), totals.get(name))
    try:
        return int(value or 0)
    except (ValueError, TypeError):
        return 0
