"""Finding job messages that vanished, so that the producer can send them again.

At-least-once has one gap with a Redis broker: a message is gone for good if it was popped from the queue
but never recorded as unacknowledged (the broker died in between), or if a pool process died while
storing the result of a message already acknowledged (a soft time limit during a long broker outage).
A message is taken for lost only when, twice a second apart, it is in neither the queue nor the
unacknowledged set and has no result. Sending it again under the same id is safe: results are per id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis

UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, routing key]
PAGE = 1000
MAX_SCAN = 50_000  # a longer queue means work is simply waiting: do not scan it


def _message_id(raw: Any) -> str | None:
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # an unacked entry
            message = message[0]
        headers = message.get("headers") or {}
        return str(headers.get("id")) if headers.get("id") else None
    except (ValueError, TypeError, AttributeError, IndexError):
        return None


def ids_in_flight(client: redis.Redis, queues: Sequence[str]) -> set[str] | None:
    """Task ids waiting in `queues` or held unacknowledged by a worker; None when too many to scan."""
    lengths = {queue: int(client.llen(queue)) for queue in queues}
    if sum(lengths.values()) + int(client.hlen(UNACKED_KEY)) > MAX_SCAN:
        return None
    found: set[str] = set()
    for queue, length in lengths.items():
        for start in range(0, length, PAGE):
            found.update(i for i in map(_message_id, client.lrange(queue, start, start + PAGE - 1)) if i)
    for _, raw in client.hscan_iter(UNACKED_KEY, count=PAGE):
        message_id = _message_id(raw)
        if message_id:
            found.add(message_id)
    return found


def find_lost(client: redis.Redis, queues: Sequence[str], pending: Iterable[str], has_state: set[str]) -> set[str]:
    """Those `pending` ids that are nowhere: not queued, not unacknowledged, no state; checked twice."""
    candidates = set(pending) - has_state
    for attempt in range(2):
        if attempt:
            time.sleep(1.0)
        in_flight = ids_in_flight(client, queues)
        if in_flight is None:
            return set()
        candidates -= in_flight
        if not candidates:
            break
    return candidates
