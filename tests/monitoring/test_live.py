"""Jobs of every outcome through a real worker (prefork pool, `--metrics-port`), then /metrics, `wasmq status
--json` and the worker's log must report exactly those jobs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import pytest

from tests.monitoring.conftest import Monitored, eventually
from worker.keys import CALL_TASK
from worker.monitoring.status import gather

pytestmark = pytest.mark.integration

UNKNOWN = "<unknown>"
# (module, function, outcome) -> jobs; every job below ends exactly once
EXPECTED_JOBS = {
    ("greeting", "greet", "succeeded"): 5,  # 3 single jobs + 2 items of a chunk
    ("greeting", "greet", "FuelExhausted"): 1,
    ("greeting", "greet", "InvalidInput"): 1,  # an oversize item inside the chunk
    ("trap", "greet", "ModuleTrap"): 1,
    ("loop-forever", "greet", "DeadlineExceeded"): 1,  # after 2 retries
    (UNKNOWN, UNKNOWN, "ModuleNotFound"): 1,  # a foreign producer's job for a module nobody has
}
EXPECTED_RETRIES = {("loop-forever", "greet", "DeadlineExceeded"): 2}
EXPECTED_DEAD = 4  # the failed single jobs (a chunk item's failure is part of its chunk's result)
JOB_FIELDS = {"job_id", "module", "function", "attempt", "worker", "outcome", "fuel", "duration_ms"}


def run_jobs_of_every_outcome(m: Monitored) -> None:
    client = m.client
    jobs = [client.submit("greeting", "greet", f"A{i}") for i in range(3)]
    jobs.append(client.submit("greeting", "greet", "Bob", fuel=50))
    jobs.append(client.submit("trap", "greet", "x"))
    jobs.append(client.submit("loop-forever", "greet", "x", timeout_ms=50))
    outcomes = [job.outcome(timeout=60) for job in jobs]
    assert [o.ok for o in outcomes] == [True, True, True, False, False, False]
    assert [o.error.type for o in outcomes if o.error] == ["FuelExhausted", "ModuleTrap", "DeadlineExceeded"]
    mixed = client.map("greeting", "greet", ["ok", "x" * (1024 * 1024 + 1), "fine"], timeout=60)
    assert [o.ok for o in mixed] == [True, False, True]
    foreign = client.app.send_task(CALL_TASK, args=["nope", "greet", "x", None], queue=m.settings.queue)
    assert type(foreign.get(timeout=60, propagate=False)).__name__ == "ModuleNotFound"


def by_labels(samples: list[tuple[str, dict[str, str], float]], name: str, *keys: str) -> dict[Any, float]:
    return {tuple(labels[k] for k in keys): value for n, labels, value in samples if n == name}


def test_metrics_and_status_report_exactly_the_jobs_that_ran(monitored: Monitored) -> None:
    run_jobs_of_every_outcome(monitored)
    node = monitored.worker.node

    def metrics_settled() -> list[tuple[str, dict[str, str], float]]:
        samples = monitored.samples()
        assert by_labels(samples, "wasmq_jobs_total", "module", "function", "outcome") == EXPECTED_JOBS
        lanes = {(lane,): 0.0 for lane in monitored.settings.lanes}  # single jobs and the batch lane
        assert by_labels(samples, "wasmq_queue_depth", "queue") == lanes  # read in the background
        assert by_labels(samples, "wasmq_dead_letter_size", "queue") == {(monitored.settings.queue,): EXPECTED_DEAD}
        return samples

    samples = eventually(metrics_settled)
    retries = by_labels(samples, "wasmq_job_retries_total", "module", "function", "reason")
    assert retries == EXPECTED_RETRIES
    per_function: Counter[tuple[str, str]] = Counter()
    for (module, function, _), n in EXPECTED_JOBS.items():
        per_function[(module, function)] += n
    durations = by_labels(samples, "wasmq_job_duration_seconds_count", "module", "function")
    assert durations == per_function  # every job that ran in a pool process has a duration
    fuel = by_labels(samples, "wasmq_job_fuel_consumed_count", "module", "function")
    assert fuel[("greeting", "greet")] >= 5 and fuel[("loop-forever", "greet")] == 1
    assert by_labels(samples, "wasmq_worker_up", "worker") == {(node,): 1.0}
    assert by_labels(samples, "wasmq_jobs_in_flight", "worker") == {(node,): 0.0}

    status = monitored.status()
    assert status["queue"] == monitored.settings.queue
    assert status["queues"] == {lane: {"waiting": 0} for lane in monitored.settings.lanes}
    assert status["dead_letters"] == EXPECTED_DEAD
    assert [w["name"] for w in status["workers"]] == [node] and status["in_flight"] == 0
    rows = {(r["module"], r["function"]): r for r in status["modules"]}
    assert set(rows) == set(per_function)
    for period in ("since_start", "last_5m"):
        seen = {}
        for (module, function), row in rows.items():
            c = row[period]
            for outcome, n in c["failed_by_type"].items():
                seen[(module, function, outcome)] = n
            if c["succeeded"]:
                seen[(module, function, "succeeded")] = c["succeeded"]
            assert c["jobs"] == per_function[(module, function)]
            assert c["duration_ms"]["p50"] is not None and c["duration_ms"]["p50"] <= c["duration_ms"]["p99"]
        assert seen == EXPECTED_JOBS, period
        loop = rows[("loop-forever", "greet")][period]
        assert loop["retried_by_reason"] == {"DeadlineExceeded": 2} and loop["deadline_exceeded"] == 1
        assert rows[("greeting", "greet")][period]["fuel_exhausted"] == 1
        assert status["totals"][period]["jobs"] == sum(EXPECTED_JOBS.values())

    log_lines = [json.loads(line) for line in monitored.worker.log_text(limit=None).splitlines() if line[:1] == "{"]
    job_lines = [line for line in log_lines if line.get("logger") == "wasmq.jobs"]
    assert job_lines and all(JOB_FIELDS <= set(line) for line in job_lines), job_lines[:3]
    finished = Counter(line["outcome"] for line in job_lines if line["event"] == "job finished")
    assert finished == {"succeeded": 3, "FuelExhausted": 1, "ModuleTrap": 1, "DeadlineExceeded": 1, "mixed": 1,
                        "ModuleNotFound": 1}  # fmt: skip
    assert sum(1 for line in job_lines if line["event"] == "job retry") == 2


def test_metric_names_pass_promtool(monitored: Monitored) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        why = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("WASMQ_REQUIRE_PROMTOOL"):
            pytest.fail(why + "; .ci/run installs it")
        pytest.skip(why)
    text = monitored.metrics_text()
    assert "wasmq_worker_up" in text
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_status_watch_prints_one_snapshot_per_refresh(monitored: Monitored) -> None:
    snapshots = monitored.status("--watch", "0.1", "--count", "2")
    assert len(snapshots) == 2 and all(s["queue"] == monitored.settings.queue for s in snapshots)


def _running(monitored: Monitored, job_id: str) -> dict[str, Any] | None:
    replies = monitored.client.app.control.broadcast(
        "wasmq_status", reply=True, destination=[monitored.worker.node], limit=1, timeout=2
    )
    for reply in replies or []:
        for answer in reply.values():
            for job in answer.get("active") or []:
                if job["id"] == job_id:
                    return dict(job)
    return None


def _lost_retries(m: Monitored) -> float:
    return by_labels(m.samples(), "wasmq_job_retries_total", "module", "function", "reason").get(
        ("loop-forever", "greet", "WorkerLost"), 0.0
    )


def test_a_pool_process_killed_under_a_job_is_a_worker_lost_retry(monitored: Monitored) -> None:
    """Counted in the worker's main process (task_retry), which then forks a new pool process."""
    m = monitored
    before = by_labels(m.samples(), "wasmq_jobs_total", "module", "function", "outcome")
    submitted = caught = missed = 0

    def one_lost() -> None:
        assert _lost_retries(m) == 1

    for _ in range(5):  # the job runs 3 x 300 ms: catch it running, then kill its pool process
        job = m.client.submit("loop-forever", "greet", "x")
        submitted += 1
        running = None
        while running is None and not job.result.ready():
            running = _running(m, job.id)
        if running is not None:
            assert running["module"] == "loop-forever" and running["function"] == "greet"
            assert running["deadline_s"] == 0.3 and running["elapsed_s"] >= 0
            os.kill(running["pid"], signal.SIGKILL)
        outcome = job.outcome(timeout=60)
        assert outcome.error is not None and outcome.error.type == "DeadlineExceeded"
        time.sleep(0.5)  # let the pool processes flush what they counted before one of them is killed
        if running is not None:
            try:  # the kill can land just after the attempt ended: then no job was lost
                eventually(one_lost, timeout=5)
            except AssertionError:
                missed += 1  # and the killed process may have taken that job's last second of counts along
                continue
            caught = 1
            break
    assert caught, "never killed a pool process while it ran the job"

    def settled() -> None:
        jobs = by_labels(m.samples(), "wasmq_jobs_total", "module", "function", "outcome")
        key = ("loop-forever", "greet", "DeadlineExceeded")
        assert submitted - missed <= jobs[key] - before.get(key, 0) <= submitted
        assert _lost_retries(m) == 1

    eventually(settled)
    rows = {(r["module"], r["function"]): r for r in m.status()["modules"]}
    assert rows[("loop-forever", "greet")]["since_start"]["retried_by_reason"]["WorkerLost"] == 1
    assert m.worker.alive()


def test_a_running_job_is_in_flight_near_its_deadline(monitored: Monitored) -> None:
    """`wasmq status` lists running jobs with their deadline (here any running job counts as near it)."""
    m = monitored
    for _ in range(10):  # a job runs about a second (3 x 300 ms); a look at the workers takes 0.3 s
        job = m.client.submit("loop-forever", "greet", "x")
        seen = None
        while seen is None and not job.result.ready():
            snapshot = gather(m.settings, m.client.app, timeout=0.3, near=1e-9)
            seen = next((j for j in snapshot["deadlines"] if j["id"] == job.id), None)
        job.outcome(timeout=60)
        if seen is not None:
            break
    assert seen is not None, "never saw the job running"
    assert seen["state"] in ("near", "past") and seen["worker"] == m.worker.node
    assert seen["module"] == "loop-forever" and seen["deadline_s"] == 0.3 and seen["items"] == 1
    assert snapshot["in_flight"] >= 1
