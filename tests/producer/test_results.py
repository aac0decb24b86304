"""Waiting for results: pub/sub wakes a waiting producer, the result keys stay the truth (fakeredis, no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from celery import Celery
from celery.backends.redis import RedisBackend

from tests.conftest import MANIFESTS
from worker.config import Settings
from worker.errors import JobTimeout
from worker.producer.results import ResultListener, wait_for_results
from worker.queue.app import make_app


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    server = fakeredis.FakeServer()
    monkeypatch.setattr(RedisBackend, "_create_client", lambda self, **_: fakeredis.FakeRedis(server=server))
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue="results-unit", manifests=MANIFESTS, cache_dir=None)
    producer = make_app(settings, producer=True)
    yield producer
    producer.close()


def store(app: Celery, task_id: str, value: Any, *, publish: bool = True) -> None:
    """What a worker does when a job ends: set the result key and (normally) publish it."""
    backend = app.backend
    if publish:
        backend.mark_as_done(task_id, value)
        return
    meta = {"status": "SUCCESS", "result": value, "traceback": None, "children": [], "task_id": task_id}
    backend.client.set(backend.get_key_for_task(task_id), backend.encode(meta))  # a lost pub/sub message


def collect(app: Celery, ids: list[str], listener: ResultListener | None, timeout: float = 10.0) -> dict[str, Any]:
    got: dict[str, Any] = {}
    wait_for_results(app, ids, lambda i, meta: got.__setitem__(i, meta["result"]), timeout=timeout, listener=listener)
    return got


def later(delay: float, action: Any) -> threading.Timer:
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


def test_published_results_reach_a_listening_waiter(app: Celery) -> None:
    listener = ResultListener(app)
    store(app, "done-before", "a")  # stored before the wait: found by the first read of the keys
    timers = [later(0.05, lambda: store(app, "done-during", "b")), later(0.1, lambda: store(app, "third", "c"))]
    try:
        got = collect(app, ["done-before", "done-during", "third"], listener)
    finally:
        for timer in timers:
            timer.join()
        listener.close()
    assert got == {"done-before": "a", "done-during": "b", "third": "c"}


def test_listener_hands_over_the_published_meta(app: Celery) -> None:
    listener = ResultListener(app)
    with listener.subscribed(["job-1"]) as active:
        assert active is listener
        store(app, "job-1", {"output": "x"})
        found: dict[str, Any] = {}
        for _ in range(50):  # each wait returns at the first message (or after its timeout)
            found.update(listener.wait(0.1))
            if found:
                break
    listener.close()
    assert found["job-1"]["status"] == "SUCCESS" and found["job-1"]["result"] == {"output": "x"}


def test_a_result_whose_message_was_lost_is_still_read_from_its_key(app: Celery) -> None:
    listener = ResultListener(app)
    timer = later(0.05, lambda: store(app, "quiet", "q", publish=False))
    try:
        got = collect(app, ["quiet"], listener)
    finally:
        timer.join()
        listener.close()
    assert got == {"quiet": "q"}


def test_a_busy_listener_leaves_the_second_waiter_polling(app: Celery) -> None:
    listener = ResultListener(app)
    store(app, "other", "o")
    with listener.subscribed(["first"]) as active:
        assert active is listener
        with listener.subscribed(["second"]) as second:
            assert second is None  # lent to one waiter at a time
        timer = later(0.05, lambda: store(app, "second", "s"))
        try:
            assert collect(app, ["other", "second"], listener) == {"other": "o", "second": "s"}
        finally:
            timer.join()
    listener.close()


def test_a_failing_listener_falls_back_to_polling(app: Celery, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = ResultListener(app)

    def broken(*_: object, **__: object) -> None:
        raise ConnectionError("pub/sub connection lost")

    with listener.subscribed(["x"]):
        pass  # creates the pub/sub connection
    monkeypatch.setattr(listener._pubsub, "get_message", broken)
    timer = later(0.05, lambda: store(app, "late", "l"))
    try:
        assert collect(app, ["late"], listener) == {"late": "l"}
    finally:
        timer.join()
    assert listener.broken
    with listener.subscribed(["y"]) as active:
        assert active is None  # rests for a while, waits poll meanwhile
    listener.close()


def test_a_waiter_still_times_out(app: Celery) -> None:
    listener = ResultListener(app)
    with pytest.raises(JobTimeout):
        collect(app, ["never"], listener, timeout=0.05)
    listener.close()
