"""Celery task events (what Flower and `celery events` read) from a real worker: every job's events arrive,
in order, several to a message (worker/consumer.py batches them), and none are lost at a warm shutdown."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.events.receiver import EventReceiver

from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.producer.client import Client

pytestmark = pytest.mark.integration

LIFECYCLE = ["task-received", "task-started", "task-succeeded"]


class Monitor(EventReceiver):  # type: ignore[misc]
    """An event receiver as Flower runs one, which also counts the messages the events came in."""

    def __init__(self, app: Celery, connection: Any, node: str) -> None:
        super().__init__(connection, handlers={"*": self._on_event}, app=app)
        self.node = node
        self.ready = threading.Event()
        self.messages = 0
        self.events: dict[str, list[str]] = defaultdict(list)  # task id -> event types, as received

    def on_consume_ready(self, *args: Any, **kwargs: Any) -> None:
        super().on_consume_ready(*args, **kwargs)
        self.ready.set()

    def _receive(self, body: Any, message: Any) -> None:
        batch = body if isinstance(body, list) else [body]
        if any(isinstance(e, dict) and e.get("hostname") == self.node for e in batch):
            self.messages += 1
        super()._receive(body, message)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("hostname") == self.node and event.get("uuid"):
            self.events[event["uuid"]].append(event["type"])

    def wait_for(self, task_ids: list[str], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.events.get(t, [])[-1:] == ["task-succeeded"] for t in task_ids):
                return
            time.sleep(0.05)
        missing = {t: self.events.get(t) for t in task_ids if self.events.get(t, [])[-1:] != ["task-succeeded"]}
        raise AssertionError(f"task events missing for {len(missing)} jobs: {list(missing.items())[:3]}")


@contextmanager
def monitoring(app: Celery, node: str) -> Iterator[Monitor]:
    with app.connection_for_read() as connection:
        monitor = Monitor(app, connection, node)
        thread = threading.Thread(target=lambda: monitor.capture(limit=None, timeout=None, wakeup=False), daemon=True)
        thread.start()
        try:
            assert monitor.ready.wait(10), "the event receiver never started consuming"
            yield monitor
        finally:
            monitor.should_stop = True
            thread.join(timeout=10)


def test_every_job_has_its_events_in_order_several_to_a_message(worker: WorkerProcess, client: Client) -> None:
    with monitoring(client.app, worker.node) as monitor:
        jobs = [client.submit("greeting", "greet", f"ev{i}") for i in range(40)]
        assert [job.get(timeout=60) for job in jobs] == [f"Hello World, ev{i}!" for i in range(40)]
        ids = [job.id for job in jobs]
        monitor.wait_for(ids)
    assert all(monitor.events[t] == LIFECYCLE for t in ids), [monitor.events[t] for t in ids[:3]]
    events = sum(len(monitor.events[t]) for t in ids)
    assert monitor.messages * 2 <= events, f"{events} events came in {monitor.messages} messages: not batched"


def test_events_still_buffered_at_a_warm_shutdown_are_sent(queue_settings: Settings, tmp_path: Path) -> None:
    settings = queue_settings.with_(queue=f"wasmq-events-{uuid.uuid4().hex[:8]}")
    # A flush interval far longer than the test: only the flush at shutdown can send these jobs' events.
    node = WorkerProcess(env_for(settings, WASMQ_EVENT_FLUSH_S="600"), log_dir=tmp_path, name="events")
    with Client(settings) as client:
        node.start(client)
        try:
            with monitoring(client.app, node.node) as monitor:
                jobs = [client.submit("greeting", "greet", f"last{i}") for i in range(5)]
                assert [job.get(timeout=60) for job in jobs] == [f"Hello World, last{i}!" for i in range(5)]
                node.stop()  # SIGTERM: a warm shutdown
                assert node.proc is not None and node.proc.returncode == 0, node.log_text()
                monitor.wait_for([job.id for job in jobs])
        finally:
            node.stop()
