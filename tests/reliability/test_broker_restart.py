"""Redis (AOF on) restarted mid-batch, crashed and cleanly: producers and workers reconnect, nothing is lost."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import BackgroundBatch, build_scenario
from tests.reliability.test_crashes import check_all_greeted, names
from worker.devtools.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.reliability

N = 1200
CHUNK = 2


@pytest.fixture
def aof_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "shutdown"])
def test_redis_restart_mid_batch(aof_redis: EmbeddedRedis, cache_dir: Path, tmp_path: Path, sig: int) -> None:
    sc = build_scenario(f"redis_restart_mid_batch[{sig.name}]", aof_redis.url, cache_dir, tmp_path)
    try:
        with sc.client() as client:
            sc.start_worker(client)
            inputs = names(N)
            batch = BackgroundBatch(client, "greeting", "greet", inputs, chunk_size=CHUNK, timeout=240)
            sc.messages = N // CHUNK
            batch.wait_until(lambda done: done >= 200)
            aof_redis.kill(sig)
            time.sleep(2.0)  # workers and producer see the broker gone
            aof_redis.start()
            outcomes = batch.join()
            check_all_greeted(outcomes, inputs)
            assert all(w.alive() for w in sc.workers)
            sc.report(submitted=N, outcomes=list(outcomes), progress_done=batch.done, dead=sc.dead().size())
    finally:
        for worker in sc.workers:
            worker.stop()
