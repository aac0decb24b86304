"""Prometheus helpers, log configuration, settings, the status text and the metrics collector (no network)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from prometheus_client import Histogram

from worker.cli import main
from worker.config import Settings
from worker.errors import ConfigError
from worker.monitoring import exporter, logs, metrics, nodes, status


def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
    found = [(s.name, dict(s.labels), s.value) for family in h.collect() for s in family.samples]
    return [s for s in found if "created" not in s[0]]


def test_bulk_histogram_update_equals_one_observe_per_value() -> None:
    values = [0.0004, 0.0005, 0.0005, 0.003, 0.7, 1.0, 42.0, 1000.0]
    one = Histogram("one_seconds", "h", ["m"], buckets=metrics.DURATION_BUCKETS, registry=None)
    bulk = Histogram("one_seconds", "h", ["m"], buckets=metrics.DURATION_BUCKETS, registry=None)
    deltas = metrics.MetricDeltas()
    for v in values:
        one.labels("x").observe(v)
        deltas.observe(("x", "f"), v, None, 1)
    metrics._add_to_histogram(bulk.labels("x"), deltas.durations[("x", "f")])
    assert samples(one) == samples(bulk)


def test_bucket_index_matches_observe_at_the_bounds() -> None:
    assert metrics.bucket_index(metrics.DURATION_BUCKETS, 0.0005) == 0
    assert metrics.bucket_index(metrics.DURATION_BUCKETS, 0.00051) == 1
    assert metrics.bucket_index(metrics.DURATION_BUCKETS, 1e9) == len(metrics.DURATION_BUCKETS) - 1
    assert metrics.FUEL_BUCKETS == tuple(sorted(metrics.FUEL_BUCKETS)) and metrics.FUEL_BUCKETS[-1] == metrics.INF


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    logs._configured = False


def test_json_lines_for_structlog_and_stdlib_alike(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure_logging("json", "INFO", stream=out, cache=False)
    structlog.get_logger("wasmq.jobs").info("job finished", job_id="j1", outcome="succeeded", fuel=3)
    structlog.get_logger("wasmq.jobs").debug("not shown")
    logging.getLogger("celery.worker.strategy").info("Task %s[%s] received", "wasmq.call", "j1")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert list(first)[:4] == ["timestamp", "level", "event", "logger"]
    assert first["event"] == "job finished" and first["logger"] == "wasmq.jobs" and first["fuel"] == 3
    assert second["event"] == "Task wasmq.call[j1] received" and second["level"] == "info"
    assert second["logger"] == "celery.worker.strategy"


def test_console_output_for_people_and_auto_picks_json_off_a_terminal(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure_logging("console", "INFO", stream=out, cache=False)
    structlog.get_logger("wasmq.jobs").warning("job finished", outcome="ModuleTrap")
    text = out.getvalue()
    assert "job finished" in text and "outcome=ModuleTrap" in text and not text.startswith("{")
    out = io.StringIO()
    logs.configure_logging("auto", "INFO", stream=out, cache=False)
    structlog.get_logger("x").info("hello")
    assert json.loads(out.getvalue())["event"] == "hello"


def test_metrics_settings_from_the_environment() -> None:
    s = Settings.from_env({"WASMQ_METRICS_PORT": "9808", "WASMQ_METRICS_HOST": "127.0.0.1", "WASMQ_STATS_FLUSH_S": "2"})
    assert (s.metrics_port, s.metrics_host, s.stats_flush_s) == (9808, "127.0.0.1", 2.0)
    assert Settings.from_env({}).metrics_port is None
    with pytest.raises(ConfigError, match="WASMQ_METRICS_PORT"):
        Settings.from_env({"WASMQ_METRICS_PORT": "70000"})
    with pytest.raises(ConfigError, match="WASMQ_STATS_FLUSH_S"):
        Settings.from_env({"WASMQ_STATS_FLUSH_S": "0"})


def test_bad_command_lines_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--metrics-port", "0"]) == 2
    assert main(["status", "--watch", "0"]) == 2
    assert main(["status", "--count", "0", "--watch"]) == 2
    capsys.readouterr()


def test_deadline_states() -> None:
    assert status.deadline_state({"elapsed_s": 0.1, "deadline_s": 1.0}) is None
    assert status.deadline_state({"elapsed_s": 0.85, "deadline_s": 1.0}) == "near"
    assert status.deadline_state({"elapsed_s": 1.5, "deadline_s": 1.0}) == "past"
    assert status.deadline_state({"elapsed_s": None, "deadline_s": 1.0}) is None
    assert status.deadline_state({"elapsed_s": 5.0, "deadline_s": None}) is None


def _summary(jobs: int, ok: int) -> dict[str, Any]:
    return {
        "jobs": jobs, "succeeded": ok, "failed": jobs - ok, "failed_by_type": {"ModuleTrap": jobs - ok} if jobs > ok
        else {}, "deadline_exceeded": 0, "fuel_exhausted": 0, "retried": 1, "retried_by_reason": {"WorkerLost": 1},
        "duration_ms": {"p50": 0.5, "p95": 2.0, "p99": 150.0, "mean": 1.0}, "mean_fuel": 300,
    }  # fmt: skip


def test_status_text_shows_queues_workers_counts_and_deadlines() -> None:
    job = {"id": "abcdef123456", "module": "loop-forever", "function": "greet", "items": 1, "attempt": 2,
           "elapsed_s": 1.25, "deadline_s": 1.0, "worker": "w1@h", "state": "past"}  # fmt: skip
    snapshot = {
        "queue": "wasmq", "generated_at": 1_800_000_000.0, "queues": {"wasmq": {"waiting": 12}}, "dead_letters": 3,
        "since": 1_799_999_000.0, "in_flight": 1,
        "workers": [{"name": "w1@h", "pid": 7, "queues": ["wasmq"], "concurrency": 2, "in_flight": 1, "reserved": 0,
                     "active": [job]}],
        "modules": [{"module": "trap", "function": "greet", "last_5m": _summary(4, 1), "since_start": _summary(9, 2)}],
        "deadlines": [job],
    }  # fmt: skip
    text = status.render(snapshot)
    assert "wasmq 12 waiting" in text and "dead letters: 3" in text
    assert "w1@h  pid 7  queues wasmq  busy 1/2" in text
    assert "abcdef12  loop-forever.greet  1.25 s of 1.00 s  attempt 2" in text
    assert "failed: ModuleTrap 3; retried: WorkerLost 1" in text and "failed: ModuleTrap 7" in text
    assert "PAST  abcdef12" in text and "150" in text
    assert "declared dead" not in text  # nothing to say


def test_status_text_lists_the_nodes_declared_dead() -> None:
    event = nodes.DeadNode(node="w3@h#1a2b3c4d", name="w3@h", pid=411, host="host-c", declared_at=1_800_000_015.5,
                           last_beat_at=1_800_000_000.0, by="w1@h#99887766", messages=2,
                           job_ids=["3f2a9c1e-0000", "77aa0000-1111"])  # fmt: skip
    snapshot = {
        "queue": "wasmq", "generated_at": 1_800_000_020.0, "queues": {"wasmq": {"waiting": 0}}, "dead_letters": 0,
        "since": None, "in_flight": 0, "workers": [], "modules": [], "deadlines": [],
        "dead_nodes": nodes.DeadNodes(1, 2, [event]).to_dict(),
    }  # fmt: skip
    text = status.render(snapshot)
    assert "nodes declared dead: 1, 2 messages handed back" in text
    assert "w3@h (pid 411, host-c)  silent 15.5 s  2 handed back by w1@h" in text
    assert "jobs: 3f2a9c1e 77aa0000" in text
    assert nodes.DeadNode.from_dict(event.to_dict()) == event


def test_worker_collector_reads_gauges_at_scrape_time_without_waiting_for_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery.worker import state as worker_state

    calls: list[str] = []
    monkeypatch.setattr(exporter, "queue_depths", lambda s, q: calls.append("depth") or {"wasmq": 5})
    monkeypatch.setattr(exporter, "dead_letter_sizes", lambda s, q: {"wasmq": 2})
    monkeypatch.setattr(exporter.nodes, "read_for", lambda s, q, limit: {"wasmq": nodes.DeadNodes(3, 7)})
    monkeypatch.setattr(worker_state, "active_requests", {object(), object()})
    started: list[object] = []
    monkeypatch.setattr(exporter.threading, "Thread", lambda **kw: SimpleNamespace(start=lambda: started.append(kw)))
    collector = exporter.WorkerCollector(Settings(), "w1@h", ["wasmq"])

    def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
        return {f.name: [(dict(s.labels), s.value) for s in f.samples] for f in collector.collect()}

    exporter._ready.set()
    try:
        first = scrape()  # nothing read yet: a refresh starts in the background
        assert len(started) == 1 and not first["wasmq_queue_depth"] and not calls
        scrape()
        assert len(started) == 1  # one refresh at a time
        collector.refresh()
        second = scrape()
    finally:
        exporter._ready.clear()
    assert second == {
        "wasmq_worker_up": [({"worker": "w1@h"}, 1.0)],
        "wasmq_jobs_in_flight": [({"worker": "w1@h"}, 2.0)],
        "wasmq_queue_depth": [({"queue": "wasmq"}, 5.0)],
        "wasmq_dead_letter_size": [({"queue": "wasmq"}, 2.0)],
        "wasmq_nodes_declared_dead": [({"queue": "wasmq"}, 3.0)],
        "wasmq_messages_handed_back": [({"queue": "wasmq"}, 7.0)],
    }
    assert calls == ["depth"] and len(started) == 1  # fresh figures: no new refresh within a second
    assert {f.name for f in collector.describe()} == set(second)


def test_a_given_multiprocess_directory_is_emptied_of_stale_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert exporter.prepare_directory() == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert metrics.enabled()
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    assert not metrics.enabled()


def test_task_event_settings_from_the_environment() -> None:
    s = Settings.from_env({"WASMQ_TASK_EVENTS": "off", "WASMQ_EVENT_FLUSH_S": "0.5"})
    assert (s.task_events, s.event_flush_s) == (False, 0.5)
    assert (Settings.from_env({}).task_events, Settings.from_env({}).event_flush_s) == (True, 0.1)
    with pytest.raises(ConfigError, match="WASMQ_EVENT_FLUSH_S"):
        Settings.from_env({"WASMQ_EVENT_FLUSH_S": "-1"})
    with pytest.raises(ConfigError, match="WASMQ_TASK_EVENTS"):
        Settings.from_env({"WASMQ_TASK_EVENTS": "maybe"})
