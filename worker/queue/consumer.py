"""The worker's Celery consumer: every message through the intake bounds first, and task events in batches.

Intake: Celery's task handler is wrapped, for any broker, so that a message reaches Celery's strategy (and the
pool) only once `intake.inspect` has passed it. A refused message is acknowledged and dead-lettered with
its reason, its typed error stored as its result (worker/queue/dead_lettering.py). A message whose id is
already in flight on this worker is refused without touching that job's result (the same message delivered
again is left to the run that holds it). Celery's own refusal paths (a body kombu cannot decode, an unknown
or invalid task) are taken over the same way: their stock versions log the whole body and headers. Should
anything still raise from Celery's handler for a message (not a connection error), the message is
refused rather than the worker stopped.

Events: Celery buffers task events (task-received/started/succeeded/...) but flushes the buffer on the next
turn of the event loop: at one job at a time per pool process that is about one Redis PUBLISH per event,
close to half of the main process's time per job. Here the buffer is flushed at most every
`event_flush_s` (or sooner, when Celery's buffer limit of 24 events is reached), as one `task.multi` message
holding a list of events: the form Celery's EventReceiver, `celery events` and Flower already read. Monitors
see events up to that interval later; jobs are not delayed. What is still buffered is flushed at shutdown,
and when the broker connection is lost: Celery's new event dispatcher takes over only events whose
publishing failed, so buffered ones are pushed out (or, failing that, into that outbound buffer) before the
old dispatcher goes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from celery.worker import state as worker_state
from celery.worker.consumer import Consumer
from vine import promise

from ..bounds import short_repr
from ..config import get_settings
from ..errors import MalformedMessage
from .dead_lettering import refuse
from .intake import Verdict, inspect, message_id

log = logging.getLogger("wasmq.intake")


class WasmqConsumer(Consumer):  # type: ignore[misc]
    _event_flush_timer: Any = None

    # -- intake ---------------------------------------------------------------------------------------

    def create_task_handler(self, promise: Any = promise) -> Callable[[Any], Any]:
        handle = super().create_task_handler(promise)
        settings = self.app.conf.get("wasmq_settings") or get_settings()
        fatal = tuple(self.connection_errors or ()) + tuple(getattr(self, "channel_errors", None) or ())

        def on_task_received(message: Any) -> Any:
            verdict = inspect(message, settings)
            if verdict.error is not None:
                return self._refuse(message, verdict)
            if verdict.task_id in worker_state.requests and self._duplicate(message, verdict):
                return None
            try:
                return handle(message)
            except fatal:
                raise
            except Exception as exc:
                log.exception("a message broke Celery's task handler; refusing it (job %s)", verdict.task_id)
                why = f"the worker could not take this message: {type(exc).__name__}: {str(exc)[:200]}"
                return self._refuse(message, replace(verdict, error=MalformedMessage(why), call=None))

        return on_task_received

    def _refuse(
        self, message: Any, verdict: Verdict, *, store_result: bool = True, entry_id: str | None = None
    ) -> None:
        # never a result under the id of a job in flight here (its own result is on the way)
        store_result = store_result and verdict.task_id not in worker_state.requests
        try:
            refuse(message, verdict, self.app.backend, store_result=store_result, entry_id=entry_id)
        finally:
            if not getattr(message, "acknowledged", True):
                message.ack_log_error(log, self.connection_errors)

    def _duplicate(self, message: Any, verdict: Verdict) -> bool:
        """Whether a message with the id of a job in flight here was dealt with (else it is that job's retry,
        sent by the job itself before this process heard that it ended, and runs as any message)."""
        running = worker_state.requests.get(verdict.task_id)
        held = getattr(getattr(running, "_message", None), "delivery_tag", None)
        if held is not None and held == getattr(message, "delivery_tag", None):
            log.warning("message of job %s delivered again while it runs here; left to that run", verdict.task_id)
            return True
        attempt = (getattr(running, "request_dict", None) or {}).get("retries") or 0
        if (message.headers.get("retries") or 0) > attempt:
            return False
        error = MalformedMessage(f"a job with id {verdict.task_id} is already in flight on this worker")
        entry_id = f"{verdict.task_id}-duplicate-{uuid.uuid4().hex[:8]}"  # the running job's id stays its own
        self._refuse(message, replace(verdict, error=error, call=None), store_result=False, entry_id=entry_id)
        return True

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        content_type = short_repr(getattr(message, "content_type", None), 60)
        why = f"message body cannot be decoded (content type {content_type}): {type(exc).__name__}: {exc}"
        self._refuse(message, _verdict(message, why[:1000]))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._refuse(message, _verdict(message, "message is not a task message (no task name in its headers)"))

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        self._refuse(message, _verdict(message, "message names a task this worker does not have"))

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        why = f"message has an invalid task envelope: {type(exc).__name__}: {short_repr(str(exc), 300)}"
        self._refuse(message, _verdict(message, why))

    # -- task events ----------------------------------------------------------------------------------

    def on_send_event_buffered(self) -> None:
        if self.hub is None:
            super().on_send_event_buffered()
            return
        timer = self._event_flush_timer
        # A timer entry can be cancelled under us: Celery cancels a failed connection's entries.
        if timer is None or timer.canceled:
            self._event_flush_timer = self.hub.call_later(get_settings().event_flush_s, self._flush_buffered_events)

    def _flush_buffered_events(self) -> None:
        self._event_flush_timer = None
        self._flush_events()

    def on_close(self) -> None:
        self._flush_events()  # connection lost: see the module docstring
        super().on_close()

    def shutdown(self) -> None:
        self._flush_events()  # before the Events step closes the dispatcher, which would drop the buffer
        super().shutdown()


def _verdict(message: Any, why: str) -> Verdict:
    headers = getattr(message, "headers", None)
    task = headers.get("task") if isinstance(headers, dict) else None
    shown = task[:100] if isinstance(task, str) else None
    return Verdict(error=MalformedMessage(why), task=shown, task_id=message_id(headers))
