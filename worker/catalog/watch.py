"""Which registry names changed since a process last looked.

Every publication and yank is announced on the registry's channel with the revision it made. A process
reads those notices without blocking whenever it consults its catalog (no thread: an idle process does
nothing, a forked one starts afresh), so a change is seen by the next job after it. The revision counter
is the safety net, read at most every `poll_s`: a gap in the notices, a dropped subscription or a revision
that moved without a notice (a lost message, a Redis restart) makes everything cached suspect.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..errors import WasmqError
from ..keys import REGISTRY_CHANNEL
from .registry import Registry

log = logging.getLogger("wasmq.catalog")
MAX_NOTICES_PER_LOOK = 1000  # a flood of notices is cut short: everything is then treated as changed
LOOK_EVERY_S = 0.01  # notices are read at most this often (reading costs tens of microseconds, a job ~2 ms)
EVERYTHING = None  # what `changes()` answers when it cannot say which names changed


class ChangeWatch:
    """`changes()`: the names changed since the last call, or `EVERYTHING` (None)."""

    def __init__(self, registry: Registry, *, poll_s: float) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self._pubsub: Any = None
        self._rev: int | None = None  # every change up to this revision has been reported
        self._next_poll = 0.0
        self._retry_at = 0.0  # after a failure, the registry is left alone until then
        self._next_look = 0.0

    def close(self) -> None:
        self._drop()

    def changes(self) -> set[str] | None:
        now = time.monotonic()
        if now < self._retry_at or now < self._next_look:
            return set()
        self._next_look = now + LOOK_EVERY_S
        try:
            if self._pubsub is None:
                self._subscribe()
                return EVERYTHING
            changed = self._drain()
            if changed is not EVERYTHING and now >= self._next_poll:
                self._next_poll = now + self.poll_s
                revision = self.registry.revision()
                if revision != self._rev:
                    changed, self._rev = EVERYTHING, revision
            return changed
        except WasmqError as exc:  # unreachable, or not allowed to subscribe: the poll keeps working
            log.warning("registry change notices interrupted, will look again in %.1f s: %s", self.poll_s, exc)
            self._drop()
            self._retry_at = now + self.poll_s
            return EVERYTHING

    def _subscribe(self) -> None:
        pubsub = self.registry.read(lambda r: r.pubsub(ignore_subscribe_messages=True))  # type: ignore[no-untyped-call]
        self.registry.read(lambda _: pubsub.subscribe(REGISTRY_CHANNEL))
        self._pubsub = pubsub
        self._rev = self.registry.revision()  # after subscribing: a change from now on is announced to us
        self._next_poll = time.monotonic() + self.poll_s

    def _drain(self) -> set[str] | None:
        changed: set[str] = set()
        for _ in range(MAX_NOTICES_PER_LOOK):
            message = self.registry.read(lambda _: self._pubsub.get_message(timeout=0.0))
            if message is None:
                return changed
            notice = _notice(message.get("data"))
            if notice is None:
                continue  # not ours to understand; the revision poll still covers it
            rev, name = notice
            if self._rev is not None and rev <= self._rev:
                continue  # already covered (a poll that saw this revision reported everything)
            if self._rev is None or rev != self._rev + 1:
                self._rev = rev
                return EVERYTHING  # a gap: some notice was missed
            self._rev = rev
            changed.add(name)
        return EVERYTHING

    def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # closing a broken connection may fail again; it is dropped either way
                pass


def _notice(data: Any) -> tuple[int, str] | None:
    try:
        notice = json.loads(data)
        rev, name = notice["rev"], notice["name"]
    except (TypeError, ValueError, KeyError):
        return None
    return (rev, name) if isinstance(rev, int) and isinstance(name, str) else None
