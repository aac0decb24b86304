"""Where jobs leave the normal path: final failures and malformed messages go to the dead-letter queue.

`record_failure` is connected to Celery's `task_failure` signal, which fires once per job that failed for
good (in the pool child for an error, in the worker's main process for a lost child or a hard time limit);
retries do not fire it. `DeadLetteringConsumer` replaces Celery's consumer so that a message no task can
take (not JSON, pickle, wrong envelope, unknown task) is recorded before it is dropped, instead of only logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker.consumer import Consumer

from .config import get_settings
from .dead_letters import DeadLetter, DeadLetters, bounded_payload, new_id
from .outcome import to_error

log = logging.getLogger("wasmq.intake")
_dead: DeadLetters | None = None


def dead_letters() -> DeadLetters:
    global _dead
    if _dead is None:
        settings = get_settings()
        _dead = DeadLetters.from_url(settings.redis_url, settings.queue)
    return _dead


def _safe_record(entry: DeadLetter) -> None:
    try:
        dead_letters().record(entry)
    except Exception:  # the failure is also in the result backend; never crash the consumer over it
        log.exception("could not record dead letter %s", entry.id)


def record_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **kw: Any
) -> None:
    """`task_failure` handler: one dead-letter entry per job that failed for good."""
    request = getattr(sender, "request", None)
    args, truncated = bounded_payload(list(kw.get("args") or []))
    error = to_error(exception)
    entry = DeadLetter(
        id=str(task_id or new_id()),
        reason="failed",
        error=error.to_dict(),
        task=getattr(sender, "name", None),
        args=args if not truncated else None,
        raw=args if truncated else None,
        kwargs=dict(kw.get("kwargs") or {}),
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
            error={"type": "MalformedMessage", "message": f"{why}{detail}"[:2000], "retryable": False},
            task=str(headers.get("task")) if isinstance(headers, dict) and headers.get("task") else None,
            raw=raw,
            queue=(getattr(message, "delivery_info", None) or {}).get("routing_key"),
            failed_at=time.time(),
            truncated=truncated,
        )
    )


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, recording every message it cannot turn into a task before dropping it.

    It also survives a broker restart that Celery 5.7 + kombu's Redis transport do not: after the broker
    connection is lost, closing the dead connection makes its channel restore its unacked messages through
    a transport whose client was already collected (`AttributeError` on `conninfo.hostname`), which Celery
    treats as unrecoverable and the worker exits. Those messages stay in Redis's unacked set and come back
    after the visibility timeout; the worker only needs to go on reconnecting.
    """

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as closing_error:
            log.warning("broker connection lost; ignoring an error while closing it: %r", closing_error)

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
