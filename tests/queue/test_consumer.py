"""The consumer's task-event batching (worker/consumer.py), on a real kombu event-loop timer: one pending
flush at a time, a new one once it fired or was cancelled (as Celery cancels a failed connection's timers)."""

from __future__ import annotations

import time

from kombu.asynchronous import Hub

from worker.config import get_settings
from worker.queue.consumer import WasmqConsumer


class Dispatcher:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def _consumer() -> tuple[WasmqConsumer, Hub, Dispatcher]:
    consumer = WasmqConsumer.__new__(WasmqConsumer)  # only the parts the batching uses
    hub, dispatcher = Hub(), Dispatcher()
    consumer.hub = hub
    consumer.event_dispatcher = dispatcher
    return consumer, hub, dispatcher


def _pending(hub: Hub) -> list[object]:
    return [entry for entry in hub.timer._queue if not entry[2].canceled]


def test_many_buffered_events_schedule_one_flush_which_runs_after_the_interval() -> None:
    consumer, hub, dispatcher = _consumer()
    for _ in range(10):
        consumer.on_send_event_buffered()
    assert len(_pending(hub)) == 1 and dispatcher.flushes == 0
    hub.fire_timers()
    assert dispatcher.flushes == 0  # not yet due
    time.sleep(get_settings().event_flush_s + 0.05)
    hub.fire_timers()
    assert dispatcher.flushes == 1 and not _pending(hub)
    consumer.on_send_event_buffered()  # the next event starts the next interval
    assert len(_pending(hub)) == 1
    hub.close()


def test_a_cancelled_flush_timer_is_replaced_by_the_next_event() -> None:
    consumer, hub, dispatcher = _consumer()
    consumer.on_send_event_buffered()
    [(_, _, entry)] = _pending(hub)
    entry.cancel()  # what Celery does to a failed connection's timer entries
    consumer.on_send_event_buffered()
    assert len(_pending(hub)) == 1
    time.sleep(get_settings().event_flush_s + 0.05)
    hub.fire_timers()
    assert dispatcher.flushes == 1
    hub.close()
