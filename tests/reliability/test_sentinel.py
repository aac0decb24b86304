"""Redis Sentinel: the master (one replica, three sentinels, all real redis-server processes) is lost
mid-batch, crashed or shut down; the sentinels promote the replica, workers and the producer follow the
failover, and writes the old master had not replicated are found by the producer's lost-message check and
sent again (worker/producer/lost.py): the batch completes exactly. Recovery is timed from the master's loss
to the first result after it. No node may be declared dead for having waited out the failover."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import BackgroundBatch, ResentCounter, build_scenario
from tests.reliability.test_crashes import check_all_greeted, names
from worker.devtools.sentinel_redis import SentinelCluster
from worker.monitoring import nodes

pytestmark = pytest.mark.reliability

N = 1200
CHUNK = 2


@pytest.fixture
def sentinels() -> Iterator[SentinelCluster]:
    with SentinelCluster() as cluster:
        yield cluster


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "shutdown"])
def test_sentinel_master_lost_mid_batch(sentinels: SentinelCluster, cache_dir: Path, tmp_path: Path, sig: int) -> None:
    sc = build_scenario(f"sentinel_master_lost_mid_batch[{sig.name}]", sentinels.url, cache_dir, tmp_path,
                        sentinel_master=sentinels.master_name)  # fmt: skip
    try:
        with sc.client() as client, ResentCounter() as resent:
            sc.start_worker(client)
            sc.start_worker(client)
            inputs = names(N)
            sc.messages = N // CHUNK
            batch = BackgroundBatch(client, "greeting", "greet", inputs, chunk_size=CHUNK, timeout=240)
            batch.wait_until(lambda done: done >= 200)
            lost_at = time.monotonic()
            old = sentinels.kill_master(sig)
            done_then = batch.done
            new = sentinels.wait_for_failover(old)
            batch.wait_until(lambda done: done > done_then or done == N, timeout=120)
            recovery_s = time.monotonic() - lost_at
            outcomes = batch.join()
            check_all_greeted(outcomes, inputs)
            assert sentinels.master_address() == new != old
            assert all(w.alive() for w in sc.workers)
            with sc.redis() as r:
                assert nodes.read(r, sc.settings.queue).nodes == 0  # waiting out a failover is not dying
            sc.report(submitted=N, outcomes=list(outcomes), progress_done=batch.done, dead=sc.dead().size(),
                      recovery_s=recovery_s, resent=resent.count)  # fmt: skip
    finally:
        for worker in sc.workers:
            worker.stop()
        sc.dead().purge()
