"""The worker's Celery consumer: dead-lettering intake (worker/queue/intake.py) plus task events sent in batches.

Celery buffers task events (task-received/started/succeeded/...) but flushes the buffer on the next turn of
the event loop: at one job at a time per pool process that is about one Redis PUBLISH per event, close to
half of the main process's time per job. Here the buffer is flushed at most every `event_flush_s` (or
sooner, when Celery's buffer limit of 24 events is reached), as one `task.multi` message holding a list of
events: the form Celery's EventReceiver, `celery events` and Flower already read. Monitors see events up to
that interval later; jobs are not delayed.

What is still buffered is flushed at shutdown, and when the broker connection is lost: Celery's new event
dispatcher takes over only events whose publishing failed, so buffered ones are pushed out (or, failing
that, into that outbound buffer) before the old dispatcher goes.
"""

from __future__ import annotations

from typing import Any

from ..config import get_settings
from .intake import DeadLetteringConsumer


class WasmqConsumer(DeadLetteringConsumer):
    _event_flush_timer: Any = None

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
