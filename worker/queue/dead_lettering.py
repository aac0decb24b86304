"""Where jobs leave the normal path: final failures and refused messages go to the dead-letter queue.

`record_failure` is connected to Celery's `task_failure` signal, which fires once per job that failed for
good (in the pool child for an error, in the worker's main process for a lost child or a hard time limit;
retries do not fire it), and to `task_internal_error` (a message Celery could not even call the task with).
`refuse` is what the consumer does with a message the intake refused (worker/queue/intake.py): a dead letter
with the reason, a FAILURE result with the typed error under the message's id (unless that id already has
a result: anyone can choose an id), the job counted, one log line. `record_bad_envelope` is for a queue entry
that is not even a message (worker/queue/transport.py). Whatever is kept of a message is a bounded copy.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.states import FAILURE, PENDING

from ..bounds import Cut, bounded_copy, short_repr
from ..errors import MalformedMessage, WasmqError
from ..outcome import public_error, to_error
from .dead_letters import MAX_PAYLOAD_CHARS, DeadLetter, bounded_payload, new_id
from .intake import Verdict
from .job_signals import UNKNOWN, labels
from .state import current

log = logging.getLogger("wasmq.intake")
HEADERS_KEPT = Cut(max_string=256, max_items=40, max_depth=3)


def _safe_record(entry: DeadLetter, *, replace: bool = True) -> None:
    try:
        current().dead_letters.record(entry, replace=replace)
    except Exception:  # the failure is also in the result backend; never crash the consumer over it
        log.exception("could not record dead letter %s", entry.id)


def record_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **kw: Any
) -> None:
    """`task_failure` handler: one dead-letter entry per job that failed for good."""
    request = getattr(sender, "request", None)
    raw_args, raw_kwargs = kw.get("args"), kw.get("kwargs")
    well_formed = isinstance(raw_args, list | tuple) and isinstance(raw_kwargs, dict | None)
    if well_formed:
        kept, truncated = bounded_payload({"args": list(raw_args or ()), "kwargs": dict(raw_kwargs or {})})
    else:  # a message whose arguments cannot be called cannot be requeued
        kept, truncated = None, True
    entry = DeadLetter(
        id=str(task_id or new_id())[:300],
        reason="failed",
        error=public_error(to_error(exception)),
        task=short_repr(getattr(sender, "name", None), 100) if getattr(sender, "name", None) else None,
        args=kept["args"] if kept else None,
        raw=None if kept else short_repr([raw_args, raw_kwargs], 4096),
        kwargs=(kept["kwargs"] or None) if kept else None,
        attempts=int(getattr(request, "retries", 0) or 0) + 1,
        queue=_routing_key(getattr(request, "delivery_info", None)),
        worker=getattr(request, "hostname", None),
        submitted_at=_float(getattr(request, "wasmq_submitted_at", None)),
        truncated=truncated,
    )
    _safe_record(entry)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def _routing_key(delivery_info: Any) -> str | None:
    key = delivery_info.get("routing_key") if isinstance(delivery_info, dict) else None
    return key[:200] if isinstance(key, str) else None


def raw_text(body: Any) -> tuple[str, bool]:
    """At most `MAX_PAYLOAD_CHARS` of a message body as text (cut before it is decoded), and whether it was cut."""
    if isinstance(body, bytes | bytearray):
        return bytes(body[:MAX_PAYLOAD_CHARS]).decode("utf-8", errors="replace"), len(body) > MAX_PAYLOAD_CHARS
    text = body if isinstance(body, str) else short_repr(body, 200)
    return text[:MAX_PAYLOAD_CHARS], len(text) > MAX_PAYLOAD_CHARS


def refuse(
    message: Any, verdict: Verdict, backend: Any, *, store_result: bool = True, entry_id: str | None = None
) -> str:
    """Dead-letter, answer, count and log a message the intake refused; returns the dead letter's id (the
    message's id when it is free, else `entry_id` or an id of its own)."""
    error = verdict.error or MalformedMessage("message refused")
    raw, truncated = raw_text(getattr(message, "body", None))
    headers = getattr(message, "headers", None)
    queue = _routing_key(getattr(message, "delivery_info", None))
    entry = DeadLetter(
        id=entry_id or verdict.task_id or new_id(),
        reason="malformed",
        error=public_error(error),
        task=verdict.task,
        raw=raw,
        headers=bounded_copy(headers, HEADERS_KEPT)[0] if isinstance(headers, dict) else None,
        queue=queue,
        failed_at=time.time(),
        truncated=True,  # a refused message is never requeued as it was
    )
    _safe_record(entry, replace=False)
    if store_result and verdict.task_id is not None:
        _answer(backend, verdict.task_id, error)
    _count(verdict, error, queue)
    log.warning(
        "message refused: %s (job %s, task %s, dead letter %s)%s",
        error.message, verdict.task_id, verdict.task, entry.id, " [body cut]" if truncated else "",
    )  # fmt: skip
    return entry.id


def _answer(backend: Any, task_id: str, error: WasmqError) -> None:
    """The typed error as the job's result, so that whoever waits for it hears back; never over a result."""
    try:
        if backend.get_task_meta(task_id).get("status") == PENDING:
            backend.store_result(task_id, error, FAILURE)
    except Exception:
        log.exception("could not store the refusal of %s", task_id)


def _count(verdict: Verdict, error: WasmqError, queue: str | None) -> None:
    try:
        state = current()
        module, function = labels(verdict.module, verdict.function)
        state.recorder.job(state.settings.home_queue(queue), module, function, error.type, duration_s=None, fuel=None,
                           n=verdict.items)  # fmt: skip
    except Exception:
        log.exception("could not count a refused message")


def record_bad_envelope(item: bytes | str, queue: str, exc: BaseException) -> None:
    """A queue entry that is not a message envelope at all (see worker/queue/transport.py)."""
    text, truncated = raw_text(item)
    reason = f"queue entry is not a message envelope: {short_repr(str(exc), 500)}"
    log.error("dropping a queue entry that is not a message (%s): %s", reason, short_repr(text, 200))
    error = public_error(MalformedMessage(reason))
    _safe_record(
        DeadLetter(id=new_id(), reason="malformed", error=error, raw=text, queue=queue[:200], truncated=truncated)
    )
    try:
        current().recorder.job(queue[:200], UNKNOWN, UNKNOWN, MalformedMessage.type, duration_s=None, fuel=None)
    except Exception:
        log.exception("could not count a bad envelope")
