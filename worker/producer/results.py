"""Waiting for results by reading the result backend, not only by listening to pub/sub.

Celery's Redis result consumer listens on pub/sub; a result published while the producer's pub/sub
connection was down (a Redis restart) can slip between its catch-up read and its re-subscription and never
arrive. Reading the result keys themselves (MGET, with a short, growing poll interval) cannot miss a
result that was stored, and survives the backend going away and coming back.

Polling alone makes a producer that waits for one job at a time slow: a job that takes 3 ms is seen after
0 + 2 + 4 ms of polling. So a waiting producer also listens (`ResultListener`): while it waits, it subscribes
to the channels Celery publishes each stored result on (the result key's name; the worker sets the key and
publishes in one MULTI/EXEC), takes a ready result straight from the message, and reads the keys again only
as a safety net every `POLL_MAX_S` (and at once after subscribing, so nothing stored before the subscription
is missed). A pub/sub message that is lost costs at most that interval, never the result. Subscriptions last
only while someone waits and are read continuously, so Redis never buffers results for nobody; a listener
that fails (connection lost) is dropped and the wait goes on polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.states import READY_STATES

from ..connections import CONNECTION_ERRORS, redact
from ..errors import BrokerUnavailable, JobTimeout


class PollingRedisBackend(RedisBackend):  # type: ignore[misc]
    """The producer's view of the Redis result backend: no pub/sub subscription per sent message
    (results are read by `wait_for_results`), so a long batch does not fill a pub/sub buffer nobody reads."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


class PollingSentinelBackend(SentinelBackend):  # type: ignore[misc]
    """The same, for a result backend behind Redis Sentinel (`sentinel://` URLs)."""

    on_task_call = PollingRedisBackend.on_task_call


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


def forget(app: Celery, task_ids: Collection[str]) -> None:
    """Delete the stored results of `task_ids` (read and handed over: a batch leaves no chunk result behind).
    Best effort: a result that could not be deleted now expires with the result TTL."""
    if not task_ids:
        return
    backend = app.backend
    keys = [backend.get_key_for_task(task_id) for task_id in task_ids]
    try:
        for start in range(0, len(keys), MGET_BATCH):
            backend.client.delete(*keys[start : start + MGET_BATCH])
    except CONNECTION_ERRORS:
        pass


_LISTEN_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError, ValueError, RuntimeError)
RELISTEN_AFTER_S = 30.0  # a listener that failed is tried again after this long


class ResultListener:
    """One pub/sub connection per producer, lent to one waiter at a time (others poll).

    `subscribed(keys)` subscribes for the duration of a wait; `wait(timeout)` returns the ready results
    that were published meanwhile (task id -> meta), blocking at most `timeout` seconds for the first one.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._pubsub: Any = None
        self._broken_until = 0.0
        self.failures: list[str] = []  # why the listener was dropped, most recent last (for diagnostics)

    @property
    def broken(self) -> bool:
        return time.monotonic() < self._broken_until

    @contextmanager
    def subscribed(self, task_ids: Collection[str]) -> Iterator[ResultListener | None]:
        """Subscribed to the result channels of `task_ids`, or None when the listener is busy or broken."""
        if self.broken or not self._lock.acquire(blocking=False):
            yield None
            return
        keys: list[str] = []
        try:
            backend = self.app.backend
            keys = [backend.get_key_for_task(task_id) for task_id in task_ids]
            try:
                if self._pubsub is None:
                    self._pubsub = backend.client.pubsub(ignore_subscribe_messages=True)
                for start in range(0, len(keys), MGET_BATCH):
                    self._pubsub.subscribe(*keys[start : start + MGET_BATCH])
            except _LISTEN_ERRORS as exc:
                self._drop(exc)
                yield None
                return
            yield self
        finally:
            if self._pubsub is not None and keys:
                try:
                    for start in range(0, len(keys), MGET_BATCH):
                        self._pubsub.unsubscribe(*keys[start : start + MGET_BATCH])
                except _LISTEN_ERRORS as exc:
                    self._drop(exc)
            self._lock.release()

    def wait(self, timeout: float) -> dict[str, dict[str, Any]]:
        """Ready results published within `timeout` seconds (returns at the first message, or empty)."""
        found: dict[str, dict[str, Any]] = {}
        backend = self.app.backend
        prefix = backend.task_keyprefix
        prefix = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
        end = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                # None: nothing within the time left, or a (swallowed) subscribe confirmation: read on.
                message = self._pubsub.get_message(timeout=0.0 if found else max(0.0, end - time.monotonic()))
                if message is None:
                    if found or time.monotonic() >= end:
                        return found
                    continue
                if message.get("type") != "message":
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else str(channel)
                meta = backend.decode_result(message["data"])
                if meta.get("status") in READY_STATES and channel.startswith(prefix):
                    found[channel[len(prefix) :]] = meta
        except _LISTEN_ERRORS as exc:
            self._drop(exc)
        return found

    def _drop(self, exc: BaseException) -> None:
        """A listener that failed rests for a while (waits poll meanwhile, as without a listener)."""
        self._broken_until = time.monotonic() + RELISTEN_AFTER_S
        self.failures = [*self.failures[-9:], f"{type(exc).__name__}: {exc}"]
        self._close_pubsub()

    def close(self) -> None:
        with self._lock:
            self._close_pubsub()

    def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except _LISTEN_ERRORS:
                pass


def wait_for_results(
    app: Celery,
    task_ids: Collection[str],
    on_result: Callable[[str, dict[str, Any]], None],
    *,
    timeout: float | None,
    describe: Callable[[], str] = lambda: "",
    on_stall: Callable[[set[str]], None] | None = None,
    stall_s: float = 10.0,
    listener: ResultListener | None = None,
) -> None:
    """Call `on_result(task_id, meta)` once per task as it finishes; `JobTimeout` after `timeout` seconds.

    `on_stall(pending)` runs whenever `stall_s` seconds pass without a result (see lost.py).
    With a `listener`, published results wake the wait at once (see the module docstring)."""
    pending = set(task_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_START_S
    down_since: float | None = None
    last_progress = time.monotonic()
    with _maybe_listening(listener, pending) as listen:
        while pending:
            ready: dict[str, dict[str, Any]] = {}
            if listen.due():
                ready, down_since = read_keys(app, pending, down_since)
            ready.update(listen.take())
            for task_id, meta in ready.items():
                if task_id in pending:
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
                except CONNECTION_ERRORS:
                    pass  # the broker is away: try again at the next stall
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"did not finish within {timeout} s{describe()}")
            if listen.start(pending):
                continue  # just subscribed: read the keys once more, so nothing stored before is missed
            delay = POLL_START_S if ready else min(POLL_MAX_S, delay * 2)
            listen.sleep(delay, None if deadline is None else max(0.0, deadline - time.monotonic()))


def read_keys(
    app: Celery, pending: set[str], down_since: float | None
) -> tuple[dict[str, dict[str, Any]], float | None]:
    """The finished ones among `pending`, read from their keys; an outage longer than the grace is fatal."""
    try:
        return ready_meta(app, pending), None
    except CONNECTION_ERRORS as exc:
        down_since = down_since or time.monotonic()
        if time.monotonic() - down_since > OUTAGE_GRACE_S:
            raise BrokerUnavailable(redact(f"result backend unreachable for {OUTAGE_GRACE_S:.0f} s: {exc}")) from None
        return {}, down_since


class _Listening:
    """The wait's side of a `ResultListener`: when to read the keys, and how to sleep in between."""

    def __init__(self, listener: ResultListener | None) -> None:
        self.listener = listener
        self.active: ResultListener | None = None
        self._stack: Any = None
        self._next_read = 0.0
        self._found: dict[str, dict[str, Any]] = {}

    def start(self, pending: set[str]) -> bool:
        """Subscribe (first time only, and only if a listener is free); True if it just did."""
        if self.listener is None or self._stack is not None:
            return False
        self._stack = self.listener.subscribed(set(pending))
        self.active = self._stack.__enter__()
        return self.active is not None

    def due(self) -> bool:
        """Whether to read the result keys now: always when only polling; as a safety net when listening."""
        if self.active is None or self.active.broken:
            return True
        if time.monotonic() >= self._next_read:
            self._next_read = time.monotonic() + POLL_MAX_S
            return True
        return False

    def take(self) -> dict[str, dict[str, Any]]:
        found, self._found = self._found, {}
        return found

    def sleep(self, delay: float, left: float | None) -> None:
        """Until the next poll (`delay`, at most `left`); when listening, until a result or the next key read."""
        active = self.active
        now = time.monotonic()
        if active is None or active.broken:
            time.sleep(delay if left is None else min(delay, left))
            return
        until = self._next_read if left is None else min(self._next_read, now + left)
        self._found = active.wait(until - now)

    def close(self, *exc: Any) -> None:
        if self._stack is not None:
            self._stack.__exit__(*exc)
            self._stack = None


@contextmanager
def _maybe_listening(listener: ResultListener | None, pending: set[str]) -> Iterator[_Listening]:
    listening = _Listening(listener)
    try:
        yield listening
    finally:
        listening.close(None, None, None)
