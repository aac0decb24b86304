"""Where jobs leave the normal path: final failures and malformed messages go to the dead-letter queue.

`record_failure` is connected to Celery's `task_failure` signal, which fires once per job that failed for
good (in the pool child for an error, in the worker's main process for a lost child or a hard time limit;
retries do not fire it), and to `task_internal_error` (a message Celery could not even call the task with).
`DeadLetteringConsumer` replaces Celery's consumer so that a message no task can take (not JSON, pickle,
wrong envelope, unknown task) is recorded before it is dropped, instead of only logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker.consumer import Consumer

from ..errors import MalformedMessage
from ..outcome import to_error
from .dead_letters import DeadLetter, bounded_payload, new_id
from .state import current

log = logging.getLogger("wasmq.intake")


def _safe_record(entry: DeadLetter) -> None:
    try:
        current().dead_letters.record(entry)
    except Exception:  # the failure is also in the result backend; never crash the consumer over it
        log.exception("could not record dead letter %s", entry.id)


def record_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **kw: Any
) -> None:
    """`task_failure` handler: one dead-letter entry per job that failed for good."""
    request = getattr(sender, "request", None)
    raw_args, raw_kwargs = kw.get("args"), kw.get("kwargs")
    well_formed = isinstance(raw_args, list | tuple) and isinstance(raw_kwargs, dict | None)
    args, truncated = bounded_payload(list(raw_args or ()) if well_formed else [raw_args, raw_kwargs])
    truncated = truncated or not well_formed  # a message whose arguments cannot be called cannot be requeued
    error = to_error(exception)
    entry = DeadLetter(
        id=str(task_id or new_id()),
        reason="failed",
        error=error.to_dict(),
        task=getattr(sender, "name", None),
        args=args if not truncated else None,
        raw=None if not truncated else args if isinstance(args, str) else repr(args),
        kwargs=dict(raw_kwargs) if well_formed and raw_kwargs else None,
        attempts=int(getattr(request, "retries", 0) or 0) + 1,
        queue=((getattr(request, "delivery_info", None) or {}).get("routing_key")),
        worker=getattr(request, "hostname", None),
        submitted_at=_float(getattr(request, "wasmq_submitted_at", None)),
        truncated=truncated,
    )
    _safe_record(entry)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _raw_body(message: Any) -> tuple[str, bool]:
    body = getattr(message, "body", b"")
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else str(body)
    limit = 64 * 1024
    return text[:limit], len(text) > limit


def _record_malformed(message: Any, why: str, exc: BaseException | None) -> None:
    raw, truncated = _raw_body(message)
    headers = getattr(message, "headers", None) or {}
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    _safe_record(
        DeadLetter(
            id=str(headers.get("id") or new_id()) if isinstance(headers, dict) else new_id(),
            reason="malformed",
            error=MalformedMessage(f"{why}{detail}"[:2000]).to_dict(),
            task=str(headers.get("task")) if isinstance(headers, dict) and headers.get("task") else None,
            raw=raw,
            queue=(getattr(message, "delivery_info", None) or {}).get("routing_key"),
            failed_at=time.time(),
            truncated=truncated,
        )
    )


def record_bad_envelope(item: bytes | str, queue: str, exc: BaseException) -> None:
    """A queue entry that is not a message envelope at all (see worker/redis_transport.py)."""
    text = item.decode("utf-8", errors="replace") if isinstance(item, bytes | bytearray) else str(item)
    log.error("dropping a queue entry that is not a message (%s): %r", exc, text[:200])
    _safe_record(
        DeadLetter(
            id=new_id(),
            reason="malformed",
            error=MalformedMessage(f"queue entry is not a message envelope: {exc}"[:2000]).to_dict(),
            raw=text[: 64 * 1024],
            queue=queue,
            truncated=len(text) > 64 * 1024,
        )
    )


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, recording every message it cannot turn into a task before dropping it."""

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        content_type = getattr(message, "content_type", "?")
        _record_malformed(message, f"message body cannot be decoded (content type {content_type})", exc)
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        _record_malformed(message, "message is not a task message (no task name in its headers)", None)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        _record_malformed(message, "message names a task this worker does not have", exc)
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        _record_malformed(message, "message has an invalid task envelope", exc)
        super().on_invalid_task(body, message, exc)
