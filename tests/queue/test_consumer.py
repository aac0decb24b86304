"""The consumer (worker/queue/consumer.py): the intake in front of Celery's task handler, and task-event
batching on a real kombu event-loop timer (one pending flush at a time, a new one once it fired or was
cancelled, as Celery cancels a failed connection's timers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker import state as worker_state
from celery.worker.consumer import Consumer
from kombu.asynchronous import Hub
from kombu.message import Message

from tests.support.messages import Raw, call, greet, nested
from worker.config import Settings, get_settings
from worker.queue import consumer as consumer_module
from worker.queue.consumer import WasmqConsumer
from worker.queue.intake import Verdict


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


# -- the intake in front of Celery's task handler --------------------------------------------------------


class Acked(Message):  # type: ignore[misc]
    """A kombu message that records its acknowledgement (no channel needed)."""

    def ack_log_error(self, logger: Any, errors: Any, multiple: bool = False) -> None:
        self._state = "ACK"


def delivered(raw: Raw) -> Acked:
    return Acked(body=raw.body, content_type=raw.content_type, content_encoding=raw.content_encoding,
                 headers=raw.headers, delivery_info={"routing_key": "q"}, accept=["application/json"],
                 delivery_tag=str(uuid.uuid4()))  # fmt: skip


@dataclass
class Front:
    """A WasmqConsumer's task handler, with Celery's own handler and the refusal path replaced by recorders."""

    handle: Callable[[Any], Any]
    handled: list[Any]
    refused: list[tuple[Any, Verdict, bool]]


@pytest.fixture
def front(monkeypatch: pytest.MonkeyPatch) -> Front:
    handled: list[Any] = []
    refused: list[tuple[Any, Verdict, bool]] = []

    def celery_handler(message: Any) -> None:
        handled.append(message)
        if message.headers.get("argsrepr") == "raise":
            raise ValueError("Celery choked on it")
        if message.headers.get("argsrepr") == "disconnect":
            raise ConnectionError("broker gone")

    monkeypatch.setattr(Consumer, "create_task_handler", lambda self, promise=None: celery_handler)

    def refuse(message: Any, verdict: Verdict, backend: Any, *, store_result: bool, entry_id: Any = None) -> None:
        refused.append((message, verdict, store_result))

    monkeypatch.setattr(consumer_module, "refuse", refuse)
    consumer = WasmqConsumer.__new__(WasmqConsumer)
    consumer.app = SimpleNamespace(conf={"wasmq_settings": Settings()}, backend=None)
    consumer.connection_errors, consumer.channel_errors = (ConnectionError,), ()
    return Front(consumer.create_task_handler(), handled, refused)


def test_a_hostile_message_never_reaches_celerys_handler(front: Front) -> None:
    message = delivered(call(["greeting", "greet", nested(700)]))
    front.handle(message)
    assert front.handled == []
    ((refused, verdict, store),) = front.refused
    assert refused is message and message.acknowledged and store
    assert verdict.error is not None and "nested deeper than 8" in verdict.error.message


def test_a_good_message_goes_on_to_celery(front: Front) -> None:
    message = delivered(greet("fine"))
    front.handle(message)
    assert front.handled == [message] and front.refused == []


def test_what_celerys_handler_still_raises_refuses_the_message_not_the_worker(front: Front) -> None:
    message = delivered(greet(argsrepr="raise"))
    front.handle(message)
    ((_, verdict, _),) = front.refused
    assert verdict.error is not None and "ValueError: Celery choked on it" in verdict.error.message
    with pytest.raises(ConnectionError):  # a connection error is Celery's to handle, as before
        front.handle(delivered(greet(argsrepr="disconnect")))


def test_a_second_message_with_the_id_of_a_job_in_flight(front: Front, monkeypatch: pytest.MonkeyPatch) -> None:
    running = delivered(greet("first", job_id="busy"))
    request = SimpleNamespace(_message=running, request_dict={"retries": 0})
    monkeypatch.setitem(worker_state.requests, "busy", request)
    front.handle(running)  # the same message delivered again: left to the run that holds it
    assert front.handled == [] and front.refused == [] and not running.acknowledged
    other = delivered(greet("second", job_id="busy"))
    front.handle(other)  # another message under that id: refused, and no result stored under the id
    ((message, verdict, store),) = front.refused
    assert message is other and not store and other.acknowledged
    assert verdict.error is not None and "already in flight" in verdict.error.message
    retry = delivered(greet("first", job_id="busy", retries=1))
    front.handle(retry)  # the job's own retry, sent before this process heard it ended
    assert front.handled == [retry]


def test_celerys_own_refusals_are_taken_over(front: Front, monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = WasmqConsumer.__new__(WasmqConsumer)
    consumer.app = SimpleNamespace(conf={}, backend=None)
    consumer.connection_errors = ()
    calls: list[Verdict] = []
    monkeypatch.setattr(consumer_module, "refuse", lambda message, verdict, backend, **_: calls.append(verdict))
    message = delivered(greet(job_id="undecodable"))
    consumer.on_decode_error(message, ValueError("x" * 10_000))
    consumer.on_invalid_task(None, message, ValueError("invalid ETA value 'not a date'"))
    consumer.on_unknown_task(None, message, KeyError("wasmq.nope"))
    consumer.on_unknown_message(None, message)
    assert [v.task_id for v in calls] == ["undecodable"] * 4
    assert all(v.error is not None and len(v.error.message) <= 1000 for v in calls)
    assert calls[1].error is not None and "invalid ETA" in calls[1].error.message
