"""The signal handlers: what each job end records and logs (structlog's capture_logs, fakeredis)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from celery.exceptions import Retry, TimeLimitExceeded, WorkerLostError
from structlog.testing import capture_logs

from tests.conftest import MANIFESTS
from worker.config import Settings
from worker.errors import DeadlineExceeded, FuelExhausted
from worker.monitoring import metrics, stats
from worker.monitoring.recorder import Recorder
from worker.queue import job_signals as jobs
from worker.queue import state

JOB_FIELDS = {"job_id", "module", "function", "attempt", "worker", "outcome", "fuel", "duration_ms"}


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    settings = Settings(queue="q", manifests=MANIFESTS)
    r = Recorder(settings, client=fakeredis.FakeRedis(), start=False)
    monkeypatch.setattr(state, "_state", state.WorkerState(settings, recorder=r))
    yield r


def task(name: str = "wasmq.call", retries: int = 0, redelivered: bool = False) -> SimpleNamespace:
    request = SimpleNamespace(
        hostname="w1@host", retries=retries, delivery_info={"routing_key": "q", "redelivered": redelivered}
    )
    return SimpleNamespace(name=name, request=request)


def run(t: SimpleNamespace, args: list[Any], retval: Any, state: str, task_id: str = "job-1") -> list[dict[str, Any]]:
    with capture_logs() as logs:
        jobs.on_prerun(task_id=task_id, task=t)
        jobs.on_postrun(task_id=task_id, task=t, args=args, retval=retval, state=state)
    return logs


def counts(r: Recorder) -> dict[tuple[str, str], stats.Counts]:
    r.flush()
    assert r._client is not None
    return stats.read(r._client, "q").total


def test_a_single_job_success_logs_one_line_with_every_field(rec: Recorder) -> None:
    usage = {"fuel": 336, "wall_ms": 0.1, "memory_bytes": 65536}
    logs = run(task(), ["greeting", "greet", "A", None], {"output": "Hello", "usage": usage, "pid": 1}, "SUCCESS")
    (line,) = logs
    assert JOB_FIELDS <= set(line)
    assert line["event"] == "job finished" and line["outcome"] == "succeeded" and line["fuel"] == 336
    assert (line["module"], line["function"], line["attempt"], line["worker"]) == ("greeting", "greet", 1, "w1@host")
    assert line["duration_ms"] >= 0 and line["log_level"] == "info"
    c = counts(rec)[("greeting", "greet")]
    assert c.jobs == {"succeeded": 1} and c.fuel == 336 and sum(c.durations.values()) == 1


def test_a_failure_counts_its_error_type_with_the_fuel_it_used(rec: Recorder) -> None:
    error = FuelExhausted("out of fuel", usage={"fuel": 50, "wall_ms": 0.01})
    (line,) = run(task(retries=1), ["greeting", "greet", "A", {"fuel": 50}], error, "FAILURE")
    assert line["outcome"] == "FuelExhausted" and line["fuel"] == 50 and line["attempt"] == 2
    assert line["log_level"] == "warning" and line["error"] == "out of fuel"
    assert counts(rec)[("greeting", "greet")].jobs == {"FuelExhausted": 1}


def test_a_retry_is_counted_by_reason_and_is_not_a_finished_job(rec: Recorder) -> None:
    retry = Retry(exc=DeadlineExceeded("late", usage={"fuel": 9}), when=0.2)
    (line,) = run(task(), ["loop-forever", "greet", "x", None], retry, "RETRY")
    assert line["event"] == "job retry" and line["reason"] == "DeadlineExceeded" and line["countdown_s"] == 0.2
    assert JOB_FIELDS <= set(line)
    c = counts(rec)[("loop-forever", "greet")]
    assert c.retries == {"DeadlineExceeded": 1} and not c.jobs


def test_a_chunk_counts_every_item_and_shares_its_time_by_the_items_wall_time(rec: Recorder) -> None:
    results = [
        {"ok": True, "output": "a", "usage": {"fuel": 100, "wall_ms": 1.0}},
        {"ok": True, "output": "b", "usage": {"fuel": 100, "wall_ms": 1.0}},
        {"ok": False, "error": {"type": "InvalidInput", "message": "too big"}},
        {"ok": False, "error": {"type": "DeadlineExceeded", "usage": {"fuel": 5, "wall_ms": 98.0}}},
    ]
    t = task("wasmq.call_many")
    (line,) = run(t, ["greeting", "greet", ["a", "b", "c", "d"], None], {"results": results, "pid": 1}, "SUCCESS")
    assert line["outcome"] == "mixed" and line["items"] == 4 and line["fuel"] == 205
    assert line["outcomes"] == {"succeeded": 2, "InvalidInput": 1, "DeadlineExceeded": 1}
    c = counts(rec)[("greeting", "greet")]
    assert c.jobs == {"succeeded": 2, "InvalidInput": 1, "DeadlineExceeded": 1}
    assert sum(c.durations.values()) == 4 and c.fuel_jobs == 3
    slow = max(c.durations)  # the late item got 98 % of the chunk's time
    assert c.durations[slow] == 1 and c.duration_us >= 0


def test_a_chunk_that_fails_as_a_whole_counts_each_of_its_items(rec: Recorder) -> None:
    run(task("wasmq.call_many"), ["greeting", "greet", ["a", "b", "c"], None], FuelExhausted("x"), "FAILURE")
    assert counts(rec)[("greeting", "greet")].jobs == {"FuelExhausted": 3}


def test_unknown_modules_and_functions_do_not_become_labels(rec: Recorder) -> None:
    run(task(), ["no-such-module", "greet", "x", None], FuelExhausted("x"), "FAILURE", "a")
    run(task(), ["greeting", "no-such-function", "x", None], FuelExhausted("x"), "FAILURE", "b")
    run(task(), [123, ["not", "text"], "x", None], FuelExhausted("x"), "FAILURE", "c")
    total = counts(rec)
    assert total[(jobs.UNKNOWN, jobs.UNKNOWN)].jobs == {"FuelExhausted": 2}
    assert total[("greeting", jobs.UNKNOWN)].jobs == {"FuelExhausted": 1}


def test_a_redelivered_message_answered_from_its_stored_result_is_not_counted_again(rec: Recorder) -> None:
    stored = {"output": "Hello", "usage": {"fuel": 1}, "pid": -42}  # run by another process before
    (line,) = run(task(redelivered=True), ["greeting", "greet", "A", None], stored, "SUCCESS")
    assert line["outcome"] == "duplicate"
    assert counts(rec) == {}


def test_other_tasks_are_ignored(rec: Recorder) -> None:
    assert run(task("celery.ping"), [], "pong", "SUCCESS") == []


def test_main_process_worker_lost_retry_and_failure(rec: Recorder) -> None:
    t = task()
    request = SimpleNamespace(id="j", args=["greeting", "greet", "A", None], retries=0, hostname="w1@host",
                              delivery_info={"routing_key": "q"})  # fmt: skip
    with capture_logs() as logs:
        jobs.on_retry(sender=t, request=request, reason=Retry(exc=WorkerLostError("gone")))
        jobs.on_retry(sender=t, request=request, reason=Retry(exc=DeadlineExceeded("counted in postrun")))
        jobs.on_failure(sender=t, task_id="j", exception=WorkerLostError("gone"), args=request.args)
        jobs.on_failure(sender=t, task_id="k", exception=TimeLimitExceeded(5.0), args=request.args)
        jobs.on_failure(sender=t, task_id="l", exception=FuelExhausted("counted in postrun"), args=request.args)
    assert [line["outcome"] for line in logs] == ["retry", "WorkerLost", "DeadlineExceeded"]
    assert all(JOB_FIELDS <= set(line) for line in logs)
    c = counts(rec)[("greeting", "greet")]
    assert c.retries == {"WorkerLost": 1} and c.jobs == {"WorkerLost": 1, "DeadlineExceeded": 1}
    assert sum(c.durations.values()) == 1  # the hard time limit's job took the limit; a lost one is unknown


def test_an_internal_error_is_a_failed_job(rec: Recorder) -> None:
    with capture_logs() as logs:
        jobs.on_internal_error(sender=task(), task_id="j", args=["greeting", "greet", "x"], exception=TypeError("kw"))
    assert logs[0]["outcome"] == "JobFailed"
    assert counts(rec)[("greeting", "greet")].jobs == {"JobFailed": 1}


def test_redis_outage_keeps_counts_for_the_next_flush(rec: Recorder) -> None:
    server = fakeredis.FakeServer()
    rec._client = fakeredis.FakeRedis(server=server)
    server.connected = False
    run(task(), ["greeting", "greet", "A", None], {"output": "x", "usage": {}, "pid": 1}, "SUCCESS")
    with capture_logs():
        rec.flush()
    assert rec._unsent
    server.connected = True
    assert counts(rec)[("greeting", "greet")].jobs == {"succeeded": 1}
    assert not rec._unsent


def test_prometheus_deltas_are_applied_in_bulk(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[metrics.MetricDeltas] = []
    monkeypatch.setattr(metrics, "job_metrics", lambda: SimpleNamespace(apply=applied.append))
    rec.prometheus = True
    results = [{"ok": True, "output": "x", "usage": {"fuel": 100, "wall_ms": 1.0}}] * 500
    run(task("wasmq.call_many"), ["greeting", "greet", ["x"] * 500, None], {"results": results, "pid": 1}, "SUCCESS")
    rec.flush()
    (deltas,) = applied
    assert deltas.jobs == {("greeting", "greet", "succeeded"): 500}
    assert sum(deltas.durations[("greeting", "greet")].counts) == 500
    assert deltas.fuel[("greeting", "greet")].total == 50_000
    rec.flush()
    assert len(applied) == 1  # nothing new, nothing applied


def test_an_empty_chunk_and_junk_names_are_harmless(rec: Recorder) -> None:
    (line,) = run(task("wasmq.call_many"), ["greeting", "greet", [], None], {"results": [], "pid": 1}, "SUCCESS")
    assert line["outcome"] == "succeeded" and line["items"] == 0
    (line,) = run(task(), ["m" * 5000, {"x": 1}, "x", None], FuelExhausted("x"), "FAILURE")
    assert len(line["module"]) < 210 and line["function"] == "{'x': 1}"
    assert counts(rec)[(jobs.UNKNOWN, jobs.UNKNOWN)].jobs == {"FuelExhausted": 1}


def test_jobs_sent_with_keyword_arguments_are_counted_under_their_module_and_function(rec: Recorder) -> None:
    t = task("wasmq.call_many")
    with capture_logs() as logs:
        jobs.on_prerun(task_id="kw", task=t)
        jobs.on_postrun(task_id="kw", task=t, args=[], kwargs={"module": "greeting", "function": "greet",
                        "inputs": ["a", "b"]}, retval={"results": [{"ok": True, "output": "x", "usage": {}}] * 2,
                        "pid": 1}, state="SUCCESS")  # fmt: skip
        jobs.on_failure(sender=task(), task_id="kw2", exception=WorkerLostError("gone"), args=["greeting"],
                        kwargs={"function": "greet", "input": "x"})  # fmt: skip
    assert [(line["module"], line["function"]) for line in logs] == [("greeting", "greet")] * 2
    assert logs[0]["items"] == 2
    assert counts(rec)[("greeting", "greet")].jobs == {"succeeded": 2, "WorkerLost": 1}


def test_a_hard_time_limit_reported_twice_is_counted_once(rec: Recorder) -> None:
    """Celery 5.7 fires task_failure from the pool's result and again from its timeout handler."""
    t = task()
    args = ["greeting", "greet", "A", None]
    with capture_logs() as logs:
        jobs.on_failure(sender=t, task_id="slow", exception=TimeLimitExceeded(35.0), args=args, kwargs={})
        jobs.on_failure(sender=t, task_id="slow", exception=TimeLimitExceeded(35.0), args=args, kwargs={})
        jobs.on_failure(sender=t, task_id="other", exception=TimeLimitExceeded(35.0), args=args, kwargs={})
    assert [line["job_id"] for line in logs] == ["slow", "other"]
    assert counts(rec)[("greeting", "greet")].jobs == {"DeadlineExceeded": 2}


def test_a_job_timed_out_again_later_is_counted_again(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(state.time, "monotonic", lambda: now[0])
    worker = state.current()
    assert worker.first_time_out("job") and not worker.first_time_out("job")
    now[0] += state.TIMEOUT_ECHO_S + 1
    assert worker.first_time_out("job")  # requeued and killed again: a new kill
