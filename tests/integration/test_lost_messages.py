"""A job message that vanishes from a Redis broker (popped, never recorded as unacknowledged) is found
by the waiting producer and sent again under the same id."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import MANIFESTS
from tests.support.workers import WorkerProcess
from worker.config import Settings
from worker.outcome import Outcome
from worker.producer.client import Client

pytestmark = pytest.mark.integration


def test_vanished_messages_are_sent_again(
    redis_url: str, cache_dir: Path, worker_env: dict[str, str], tmp_path: Path
) -> None:
    queue = f"wasmq-lost-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=redis_url, queue=queue, manifests=MANIFESTS, cache_dir=cache_dir, stall_check_s=1.0)
    broker = redis.Redis.from_url(redis_url)
    names = [f"n{i}" for i in range(30)]
    with Client(settings) as client, Client(settings) as batch_client:
        job = client.submit("greeting", "greet", "lost")
        got: list[Outcome] = []
        batch = threading.Thread(target=lambda: got.extend(batch_client.map("greeting", "greet", names, chunk_size=10)))
        batch.start()
        deadline = time.monotonic() + 30
        while broker.llen(queue) + broker.llen(settings.batch_lane) < 4:  # the job and three chunks
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # No worker yet: drop every message, as a broker crash between pop and record would.
        assert broker.delete(*settings.lanes) == 2
        worker = WorkerProcess({**worker_env, "WASMQ_QUEUE": queue}, log_dir=tmp_path, concurrency=1)
        worker.start(client)
        try:
            assert job.get(timeout=120) == "Hello World, lost!"
            batch.join(120)
            assert [o.output for o in got] == [f"Hello World, {n}!" for n in names]
        finally:
            worker.stop()
