"""Flower pointed at the broker sees wasmq's workers and tasks; the worker here is Celery's own command
(`celery -A worker.app worker`), which runs without metrics and still feeds `wasmq status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.conftest import (
    celery_worker,
    eventually,
    forget_queue,
    free_port,
    metric_samples,
    monitoring_env,
)
from tests.support.workers import WorkerProcess
from worker.config import Settings
from worker.producer.client import Client

pytestmark = pytest.mark.integration


class Flower:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "celery", "-A", "worker.app", "flower", f"--port={self.port}"]
        cmd.append("--address=127.0.0.1")
        # Flower 2 serves its API only with authentication, or when told it may go without.
        env = {**env, "FLOWER_UNAUTHENTICATED_API": "true"}
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.log = log

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            body = response.read().decode("utf-8")
        return json.loads(body) if path.startswith("/api/") else body

    def wait_ready(self) -> None:
        def up() -> None:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                assert self.get("/healthcheck") == "OK"
            except OSError as exc:
                raise AssertionError(str(exc)) from None

        eventually(up, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def celery_node(
    redis_url: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, dict[str, str], WorkerProcess, Client]]:
    settings, env = monitoring_env(redis_url, cache_dir, f"wasmq-flower-{uuid.uuid4().hex[:8]}")
    worker = celery_worker(env, log_dir=tmp_path_factory.mktemp("flower-log"), concurrency=1, name="celery")
    with Client(settings) as client:
        worker.start(client)
        try:
            yield settings, env, worker, client
        finally:
            worker.stop()
            forget_queue(settings)


def test_flower_shows_the_workers_and_the_tasks(
    celery_node: tuple[Settings, dict[str, str], WorkerProcess, Client], tmp_path: Path
) -> None:
    settings, env, worker, client = celery_node
    flower = Flower(env, tmp_path / "flower.log")
    try:
        flower.wait_ready()
        _wait_until_flower_records_events(flower, client)
        ok = client.submit("greeting", "greet", "Flower")
        bad = client.submit("trap", "greet", "x")
        assert ok.get(timeout=60) == "Hello World, Flower!"
        assert bad.outcome(timeout=60).error is not None

        def tasks_seen() -> dict[str, Any]:
            tasks = flower.get("/api/tasks")
            assert tasks.get(ok.id, {}).get("state") == "SUCCESS", sorted(tasks)
            assert tasks.get(bad.id, {}).get("state") == "FAILURE"
            return dict(tasks)

        tasks = eventually(tasks_seen)
        assert tasks[ok.id]["name"] == "wasmq.call" and tasks[ok.id]["worker"] == worker.node
        assert "ModuleTrap" in str(tasks[bad.id].get("exception"))
        workers = eventually(lambda: _with_node(flower.get("/api/workers?refresh=1"), worker.node))
        assert settings.queue in [q["name"] for q in workers[worker.node].get("active_queues", [])]
        # Flower's task-result API reads the result backend through Celery's default app.
        done = flower.get(f"/api/task/result/{ok.id}")
        assert done["state"] == "SUCCESS" and done["result"]["output"] == "Hello World, Flower!", done
        failed = flower.get(f"/api/task/result/{bad.id}")
        assert failed["state"] == "FAILURE" and "ModuleTrap" in str(failed["result"]), failed
    finally:
        flower.stop()


def _wait_until_flower_records_events(flower: Flower, client: Client) -> None:
    """Flower answers before its event receiver is connected: send jobs until it records one from the start."""
    for _ in range(15):
        job = client.submit("greeting", "greet", "warm-up")
        job.get(timeout=60)
        try:
            eventually(lambda job_id=job.id: _named(flower.get("/api/tasks"), job_id), timeout=2)
            return
        except AssertionError:
            continue
    raise AssertionError("Flower never recorded a task's events")


def _named(tasks: dict[str, Any], task_id: str) -> None:
    assert (tasks.get(task_id) or {}).get("name") == "wasmq.call"


def _with_node(workers: dict[str, Any], node: str) -> dict[str, Any]:
    assert node in workers, sorted(workers)
    return workers


def test_celery_command_runs_jobs_without_metrics_and_status_still_counts_them(
    celery_node: tuple[Settings, dict[str, str], WorkerProcess, Client],
) -> None:
    _, env, worker, client = celery_node
    assert client.submit("greeting", "greet", "plain").get(timeout=60) == "Hello World, plain!"
    assert "serving Prometheus metrics" not in worker.log_text(limit=None)

    def counted() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "worker.cli", "status", "--json", "--timeout", "0.5"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        status: dict[str, Any] = json.loads(done.stdout)
        rows = {(r["module"], r["function"]): r["since_start"] for r in status["modules"]}
        assert rows.get(("greeting", "greet"), {}).get("succeeded", 0) >= 1, rows
        return status

    status = eventually(counted)
    assert [w["name"] for w in status["workers"]] == [worker.node]


def test_celery_command_serves_metrics_when_a_port_is_set(redis_url: str, cache_dir: Path, tmp_path: Path) -> None:
    """`celery -A worker.app worker` imports prometheus_client (through Flower's command plugin) before the
    worker sets PROMETHEUS_MULTIPROC_DIR: the pool processes' counts must reach /metrics all the same."""
    settings, env = monitoring_env(redis_url, cache_dir, f"wasmq-celery-metrics-{uuid.uuid4().hex[:8]}")
    port = free_port()
    env["WASMQ_METRICS_PORT"] = str(port)
    worker = celery_worker(env, log_dir=tmp_path, concurrency=1, name="celery-metrics")
    with Client(settings) as client:
        worker.start(client)
        try:
            assert client.submit("greeting", "greet", "metrics").get(timeout=60) == "Hello World, metrics!"

            def counted() -> None:
                jobs = {(n, v) for n, labels, v in metric_samples(port) if labels.get("outcome") == "succeeded"}
                assert jobs == {("wasmq_jobs_total", 1.0)}

            eventually(counted)
            assert "serving Prometheus metrics" in worker.log_text(limit=None)
        finally:
            worker.stop()
            forget_queue(settings)
