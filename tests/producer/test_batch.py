"""Streaming batches through a real worker on a real Redis: a generator in, outcomes in order out, the window
held, chunk results deleted once read, and single jobs served ahead of queued chunks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.support.workers import WorkerProcess
from worker.chunk_result import STEP
from worker.config import Settings
from worker.keys import CALL_MANY_TASK
from worker.producer.batch import SUMMARY_PREFIX
from worker.producer.client import Client

pytestmark = pytest.mark.integration


def _result_keys(r: redis.Redis, marker: str) -> list[bytes]:
    return [k for k in r.scan_iter(match="celery-task-meta-*", count=1000) if marker.encode() in (r.get(k) or b"")]


def test_a_generator_streams_through_in_order_and_leaves_only_a_summary(
    client: Client, worker: WorkerProcess, queue_settings: Settings
) -> None:
    marker = "gen-7f3a"
    read: list[int] = []

    def names() -> Iterator[str]:
        for i in range(5000):
            read.append(i)
            yield f"{marker} {i}"

    stream = client.imap("greeting", "greet", names(), chunk_size=40, window=3)
    outputs = []
    for index, outcome in enumerate(stream):
        # Back-pressure: the stream has read at most `window` chunks beyond what it handed over.
        assert len(read) <= index + 1 + 3 * 40
        assert outcome.ok and outcome.meta["worker"] and outcome.meta["attempt"] == 1
        outputs.append(outcome.output)
    assert outputs == [f"Hello World, {marker} {i}!" for i in range(5000)]
    with redis.Redis.from_url(queue_settings.redis_url) as r:
        assert _result_keys(r, marker) == []  # every chunk result was deleted once read
        summaries = [json.loads(r.get(k) or b"{}") for k in r.scan_iter(match=f"{SUMMARY_PREFIX}*")]
        assert any(s["total"] == 5000 and s["failed"] == 0 and s["module"] == "greeting" for s in summaries)


def test_per_item_usage_when_asked_and_failures_in_place(client: Client, worker: WorkerProcess) -> None:
    inputs = ["a", "\x00" * (2 * 1024 * 1024), "b"]  # the middle one is above the module's input limit
    lean = list(client.imap("greeting", "greet", inputs))
    assert [o.ok for o in lean] == [True, False, True] and lean[0].usage == {}
    assert lean[1].error is not None and lean[1].error.type == "InvalidInput"
    detailed = list(client.imap("greeting", "greet", ["a", "b"], usage="items"))
    assert all(o.usage["fuel"] > 0 for o in detailed)


def test_a_single_job_is_served_before_the_chunks_queued_ahead_of_it(
    queue_settings: Settings, worker: WorkerProcess
) -> None:
    """The batch lane is taken only when no single job waits: a job sent behind 80 queued chunks (each item
    runs into a 20 ms deadline, so a chunk of 5 takes about 0.1 s) is answered while most of them are still
    waiting. An order, not a time."""
    with Client(queue_settings) as batch_client, Client(queue_settings) as single:
        done: list[int] = []
        chunks = 80

        def run() -> None:
            stream = batch_client.imap("loop-forever", "greet", ["x"] * (5 * chunks), chunk_size=5, window=chunks,
                                       timeout_ms=20, max_retries=0)  # fmt: skip
            for outcome in stream:
                assert outcome.error is not None and outcome.error.type == "DeadlineExceeded"
                done.append(1)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            with redis.Redis.from_url(queue_settings.redis_url) as r:
                while r.llen(queue_settings.batch_lane) < chunks / 2 and thread.is_alive():
                    time.sleep(0.005)
            assert single.submit("greeting", "greet", "first").get(timeout=60) == "Hello World, first!"
            assert len(done) < 5 * chunks / 2
        finally:
            thread.join(timeout=120)
        assert len(done) == 5 * chunks


def test_a_chunk_stops_at_its_budget_and_says_what_it_did_not_reach(
    client: Client, worker: WorkerProcess, queue_settings: Settings
) -> None:
    """With a budget already spent after its first step, a chunk answers that step's inputs (in either
    shape) and says how many of the rest it did not start."""
    names = [f"budget {i}" for i in range(1200)]
    for usage, answers in (("chunk", "outputs"), ("items", "results")):
        sent = client.app.send_task(CALL_MANY_TASK, args=["greeting", "greet", names, None, usage, 1e-6],
                                    queue=queue_settings.batch_lane)  # fmt: skip
        result = sent.get(timeout=60)
        assert len(result[answers]) == STEP and result["unreached"] == len(names) - STEP
        if usage == "chunk":
            assert result["outputs"] == [f"Hello World, {n}!" for n in names[:STEP]]


def test_a_batch_sends_again_what_a_chunk_budget_did_not_reach(queue_settings: Settings, worker: WorkerProcess) -> None:
    """Every chunk stops after its first step (a budget of a microsecond): each is sent again for the rest,
    and the outcomes still come once each, in order."""
    with Client(queue_settings.with_(chunk_budget_s=1e-6)) as hasty:
        names = [f"again {i}" for i in range(3 * STEP + 7)]
        outcomes = hasty.map("greeting", "greet", names, chunk_size=2 * STEP + 3, timeout=120)
    assert [o.output for o in outcomes] == [f"Hello World, {n}!" for n in names]
