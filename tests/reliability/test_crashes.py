"""Workers dying mid-batch: a pool child killed, a whole node killed, a node told to stop (SIGTERM)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.reliability.conftest import BackgroundBatch, Scenario
from tests.support.workers import WorkerProcess
from worker.producer.client import Client

pytestmark = pytest.mark.reliability

N = 1200
CHUNK = 2


def names(n: int = N) -> list[str]:
    return [f"user-{i}" for i in range(n)]


def check_all_greeted(outcomes: list, inputs: list[str]) -> None:
    assert len(outcomes) == len(inputs)
    wrong = [(i, o) for i, (o, n) in enumerate(zip(outcomes, inputs, strict=True)) if o.output != f"Hello World, {n}!"]
    assert not wrong, wrong[:3]


def start_batch(scenario: Scenario, client: Client) -> tuple[WorkerProcess, list[str], BackgroundBatch]:
    """A worker, and a batch of N greetings in chunks of CHUNK running in the background."""
    worker = scenario.start_worker(client)
    inputs = names()
    scenario.messages = N // CHUNK
    return worker, inputs, BackgroundBatch(client, "greeting", "greet", inputs, chunk_size=CHUNK, timeout=240)


def finish_batch(scenario: Scenario, batch: BackgroundBatch, inputs: list[str]) -> None:
    outcomes = batch.join()
    check_all_greeted(outcomes, inputs)
    scenario.report(submitted=N, outcomes=list(outcomes), progress_done=batch.done, dead=scenario.dead().size())


def live_pool_pid(worker: WorkerProcess, observer: Client, timeout: float = 30) -> int:
    """A pool process that is alive now (right after a kill the pool may still list the one it replaces)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {p.pid for p in worker.pool_processes()}
        pids = [pid for pid in worker.pool_pids(observer) if pid in alive]
        if pids:
            return pids[0]
        assert time.monotonic() < deadline, "the pool has no live process"
        time.sleep(0.05)


def test_pool_child_sigkill_mid_batch(scenario: Scenario) -> None:
    with scenario.client() as client:
        worker, inputs, batch = start_batch(scenario, client)
        with scenario.client() as observer:
            for threshold in (50, 300, 600):
                batch.wait_until(lambda done, t=threshold: done >= t)
                os.kill(live_pool_pid(worker, observer), signal.SIGKILL)
                time.sleep(0.2)
        outcomes = batch.join()
        check_all_greeted(outcomes, inputs)
        assert worker.alive()
        worker.stop()  # flushes its log
        assert "exited with 'signal 9 (SIGKILL)'" in worker.log_text(limit=None)
        scenario.report(submitted=N, outcomes=list(outcomes), progress_done=batch.done, dead=scenario.dead().size())


def test_whole_node_sigkill_mid_batch_then_new_node(scenario: Scenario) -> None:
    with scenario.client() as client:
        first, inputs, batch = start_batch(scenario, client)
        batch.wait_until(lambda done: done >= 100)
        first.kill_node(signal.SIGKILL)
        scenario.start_worker(client)  # it hands back the dead node's messages once that one's heartbeat expired
        finish_batch(scenario, batch, inputs)


def test_sigterm_mid_batch_finishes_or_requeues(scenario: Scenario) -> None:
    with scenario.client() as client:
        first, inputs, batch = start_batch(scenario, client)
        batch.wait_until(lambda done: done >= 100)
        first.stop()  # SIGTERM: warm shutdown
        assert not first.alive()
        scenario.start_worker(client)
        finish_batch(scenario, batch, inputs)
