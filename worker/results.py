"""Waiting for results by reading the result backend, not only by listening to pub/sub.

Celery's Redis result consumer listens on pub/sub; a result published while the producer's pub/sub
connection was down (a Redis restart) can slip between its catch-up read and its re-subscription and never
arrive. Reading the result keys themselves (MGET, with a short, growing poll interval) cannot miss a
result that was stored, and survives the backend going away and coming back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from celery.states import READY_STATES
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import BrokerUnavailable, JobTimeout


class PollingRedisBackend(RedisBackend):  # type: ignore[misc]
    """The producer's view of the Redis result backend: no pub/sub subscription per sent message
    (results are read by `wait_for_results`), so a long batch does not fill a pub/sub buffer nobody reads."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


POLL_START_S = 0.002
POLL_MAX_S = 0.1
MGET_BATCH = 1000
OUTAGE_GRACE_S = 120.0  # how long the backend may stay unreachable before the wait gives up


def stored_meta(app: Celery, task_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """Stored metadata (any state) of those `task_ids` that have some, read in one pass."""
    backend = app.backend
    ids = list(task_ids)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), MGET_BATCH):
        part = ids[start : start + MGET_BATCH]
        raw = backend.client.mget([backend.get_key_for_task(task_id) for task_id in part])
        for task_id, payload in zip(part, raw, strict=True):
            if payload is not None:
                found[task_id] = backend.decode_result(payload)
    return found


def ready_meta(app: Celery, task_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """Stored metadata of those `task_ids` that are finished (SUCCESS or FAILURE)."""
    return {i: m for i, m in stored_meta(app, task_ids).items() if m.get("status") in READY_STATES}


def wait_for_results(
    app: Celery,
    task_ids: Collection[str],
    on_result: Callable[[str, dict[str, Any]], None],
    *,
    timeout: float | None,
    describe: Callable[[], str] = lambda: "",
    on_stall: Callable[[set[str]], None] | None = None,
    stall_s: float = 10.0,
) -> None:
    """Call `on_result(task_id, meta)` once per task as it finishes; `JobTimeout` after `timeout` seconds.

    `on_stall(pending)` runs whenever `stall_s` seconds pass without a result (see worker/lost.py)."""
    pending = set(task_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_START_S
    down_since: float | None = None
    last_progress = time.monotonic()
    while pending:
        try:
            ready = ready_meta(app, pending)
            down_since = None
        except (RedisConnectionError, RedisTimeoutError, OperationalError) as exc:
            ready = {}
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > OUTAGE_GRACE_S:
                raise BrokerUnavailable(f"result backend unreachable for {OUTAGE_GRACE_S:.0f} s: {exc}") from None
        for task_id, meta in ready.items():
            pending.discard(task_id)
            on_result(task_id, meta)
        if not pending:
            return
        if ready:
            last_progress = time.monotonic()
        elif on_stall is not None and time.monotonic() - last_progress >= stall_s:
            last_progress = time.monotonic()
            try:
                on_stall(set(pending))
            except (RedisConnectionError, RedisTimeoutError, OperationalError):
                pass  # the broker is away: try again at the next stall
        if deadline is not None and time.monotonic() >= deadline:
            raise JobTimeout(f"did not finish within {timeout} s{describe()}")
        delay = POLL_START_S if ready else min(POLL_MAX_S, delay * 2)
        time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
