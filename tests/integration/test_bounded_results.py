"""Stored results stay within WASMQ_MAX_RESULT_BYTES, through a real worker, and no output is lost.

The worker and the producer here use a 256 KiB result limit, and inputs of control characters, which JSON
escapes six-fold (the greeting module echoes its input): a chunk whose outputs would not fit is answered
in part, the producer sends the rest again in smaller chunks, and every input gets its own output; an
output too large for any result is that item's own InvalidOutput. A failed job's stored result and dead
letter keep its 10 MB input cut short.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import MANIFESTS
from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.keys import CALL_TASK
from worker.producer import batch
from worker.producer.client import Client
from worker.producer.results import forget
from worker.queue.dead_letters import DeadLetters

pytestmark = pytest.mark.integration
LIMIT = 256 * 1024


@dataclass
class Small:
    settings: Settings
    client: Client
    worker: WorkerProcess
    redis: redis.Redis


@pytest.fixture(scope="module")
def small(redis_url: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    settings = Settings(redis_url=redis_url, queue=f"wasmq-small-{uuid.uuid4().hex[:8]}", manifests=MANIFESTS,
                        cache_dir=cache_dir, max_result_bytes=LIMIT)  # fmt: skip
    worker = WorkerProcess(env_for(settings), log_dir=tmp_path_factory.mktemp("small"), concurrency=2, name="small")
    with Client(settings) as client, redis.Redis.from_url(redis_url) as r:
        worker.start(client)
        try:
            yield Small(settings, client, worker, r)
        finally:
            worker.stop()
            DeadLetters(r, settings.queue).purge()


def test_a_chunk_whose_outputs_do_not_fit_is_answered_whole_in_smaller_pieces(
    small: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored: list[int] = []  # the size of every chunk result as stored, read just before the producer deletes it

    def measure_then_forget(app: Any, task_ids: Any) -> None:
        stored.extend(int(small.redis.strlen(app.backend.get_key_for_task(i))) for i in task_ids)
        forget(app, task_ids)

    monkeypatch.setattr(batch, "forget", measure_then_forget)
    marker = uuid.uuid4().hex
    inputs = [f"{marker}-{i}-" + "\x01" * 10_000 for i in range(20)]  # 60 KB of JSON each, 1.2 MB in all
    outcomes = small.client.map("greeting", "greet", inputs, chunk_size=20, timeout=120)
    assert [o.output for o in outcomes] == [f"Hello World, {text}!" for text in inputs]
    assert len({o.meta.get("job_id") for o in outcomes}) > 3  # answered by several chunks
    assert len(stored) > 3 and 0 < max(stored) <= LIMIT
    left = [k for k in small.redis.scan_iter(match="celery-task-meta-*", count=1000) if marker.encode() in
            (small.redis.get(k) or b"")]  # fmt: skip
    assert left == []  # read, then deleted


def test_an_output_too_large_for_any_result_is_that_items_own_error(small: Small) -> None:
    inputs = ["small", "\x01" * 50_000, "also small"]  # the middle one: 300 KB of JSON
    outcomes = small.client.map("greeting", "greet", inputs, timeout=120)
    assert [o.ok for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert error is not None and error.type == "InvalidOutput" and "above the result limit" in error.message
    single = small.client.submit("greeting", "greet", "\x01" * 50_000).outcome(timeout=60)
    assert single.error is not None and single.error.type == "InvalidOutput"


def test_a_failed_jobs_huge_input_is_not_stored(small: Small) -> None:
    job = small.client.app.send_task(CALL_TASK, args=["greeting", "greet", "y" * 10_000_000, None],
                                     queue=small.settings.queue)  # fmt: skip
    failure = job.get(timeout=120, propagate=False)
    assert type(failure).__name__ == "InvalidInput"  # over the module's 1 MiB input limit
    stored = small.redis.get(small.client.app.backend.get_key_for_task(job.id))
    assert stored is not None and len(stored) < 16 * 1024
    assert json.loads(stored)["args"][:2] == ["greeting", "greet"]
    entry = DeadLetters(small.redis, small.settings.queue).get(job.id)
    assert entry is not None and entry.truncated and len(entry.to_json()) < 16 * 1024
