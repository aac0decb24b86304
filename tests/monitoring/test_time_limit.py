"""A job killed by the hard time limit is counted once in `wasmq status` (Celery 5.7 reports it twice)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.conftest import MetricsWorker, Monitored, eventually, forget_queue, free_port, monitoring_env
from worker.keys import CALL_MANY_TASK
from worker.producer.client import Client

pytestmark = pytest.mark.integration


def test_a_chunk_killed_by_the_hard_time_limit_counts_each_item_once(
    redis_url: str, cache_dir: Path, tmp_path: Path
) -> None:
    settings, env = monitoring_env(redis_url, cache_dir, f"wasmq-tl-{uuid.uuid4().hex[:8]}")
    worker = MetricsWorker(env, log_dir=tmp_path, port=free_port(), name="timelimit")
    with Client(settings) as client:
        worker.start(client)
        try:
            m = Monitored(settings=settings, env=env, worker=worker, client=client)
            # four calls that each run to their 300 ms deadline (in native code), and again: past a 1 s hard
            # limit. The soft limit (a signal Python sees only between calls) is the same, so that the
            # hard one follows it at once and kills the pool process mid-call.
            job = client.app.send_task(CALL_MANY_TASK, args=["loop-forever", "greet", list("abcd"), None],
                                       queue=settings.queue, time_limit=1, soft_time_limit=1)  # fmt: skip
            failure = job.get(timeout=60, propagate=False)
            assert type(failure).__name__ == "DeadlineExceeded", failure  # Celery's TimeLimitExceeded, typed

            def counted() -> dict[str, Any]:
                row = {(r["module"], r["function"]): r for r in m.status()["modules"]}[("loop-forever", "greet")]
                assert row["since_start"]["jobs"] >= 4
                return dict(row["since_start"])

            counts = eventually(counted)
            assert counts["jobs"] == 4 and counts["failed_by_type"] == {"DeadlineExceeded": 4}
            assert client.submit("greeting", "greet", "after").get(timeout=60) == "Hello World, after!"
            eventually(lambda: _assert_jobs(m, "greeting", 1))  # counters flushed since: nothing came late
            _assert_jobs(m, "loop-forever", 4)
        finally:
            worker.stop()
            forget_queue(settings)


def _assert_jobs(m: Monitored, module: str, jobs: int) -> None:
    rows = [r["since_start"]["jobs"] for r in m.status()["modules"] if r["module"] == module]
    assert rows == [jobs]
