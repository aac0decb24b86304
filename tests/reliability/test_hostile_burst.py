"""A burst of hostile jobs mixed with good ones: every good job succeeds, every hostile one fails with its
type and is dead-lettered once, no pool process dies, nothing is lost."""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import Scenario

pytestmark = pytest.mark.reliability

HOSTILE = [
    ("loop-forever", "greet", "DeadlineExceeded"),
    ("memory-grow", "greet", "MemoryLimitExceeded"),
    ("huge-memory", "greet", "MemoryLimitExceeded"),
    ("stack-overflow", "greet", "ModuleTrap"),
    ("trap", "divide", "ModuleTrap"),
    ("past-end", "greet", "InvalidOutput"),
    ("wrap-around", "wrap2", "InvalidOutput"),
    ("oversize-output", "greet", "InvalidOutput"),
    ("seed-c-no-nul", "wasm_memory_c_format_hello_world", "InvalidOutput"),
    ("wrong-signature", "greet", "ModuleRejected"),
    ("wasi-probe", "exit_now", "ModuleTrap"),
]


def test_hostile_burst_mixed_with_good_jobs(scenario: Scenario) -> None:
    with scenario.client() as client:
        worker = scenario.start_worker(client)
        pids = worker.pool_pids(client)
        jobs = []
        for round_ in range(4):
            for module, function, expected in HOSTILE:
                jobs.append((client.submit(module, function, f"mallory-{round_}", timeout_ms=200), expected))
                for i in range(4):
                    jobs.append((client.submit("greeting", "greet", f"alice-{round_}-{i}"), None))
        scenario.messages = len(jobs)
        outcomes = []
        for job, expected in jobs:
            outcome = job.outcome(timeout=180)
            outcomes.append(outcome)
            if expected is None:
                assert outcome.ok, outcome.error
            else:
                assert outcome.error is not None and outcome.error.type == expected, outcome.to_dict()
        hostile = sum(1 for _, expected in jobs if expected)
        # A failed job's dead letter is written right after its result (task_failure fires once the result is
        # stored), so the last one may still be on its way when the producer has read every result.
        deadline = time.monotonic() + 30
        while scenario.dead().size() < hostile and time.monotonic() < deadline:
            time.sleep(0.1)
        dead = scenario.dead().list()
        assert len(dead) == hostile
        assert {e.id for e in dead} == {job.id for job, expected in jobs if expected}
        assert worker.pool_pids(client) == pids and worker.alive()
        scenario.report(submitted=len(jobs), outcomes=outcomes, progress_done=len(jobs), dead=len(dead))
