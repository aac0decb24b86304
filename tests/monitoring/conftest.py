"""Monitoring tests: a queue of their own (so counts are exact), workers that serve /metrics, helpers to read
/metrics and `wasmq status --json` the way an operator would."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import MANIFESTS
from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.producer.client import Client

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """`check()`'s value once it stops raising AssertionError; its last AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


def monitoring_env(redis_url: str, cache_dir: Path, queue: str) -> tuple[Settings, dict[str, str]]:
    settings = Settings(
        redis_url=redis_url, queue=queue, manifests=MANIFESTS, cache_dir=cache_dir, retry_backoff_s=0.1,
        stats_flush_s=0.2,
    )  # fmt: skip
    env = env_for(settings, WASMQ_METRICS_HOST="127.0.0.1", WASMQ_LOG_FORMAT="json")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return settings, env


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode("utf-8"))


def metric_samples(port: int) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample /metrics on `port` serves."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(metrics_text(port))
    return [(s.name, dict(s.labels), s.value) for family in families for s in family.samples]


class MetricsWorker(WorkerProcess):
    """`wasmq worker --metrics-port PORT`."""

    def __init__(self, env: dict[str, str], *, log_dir: Path, port: int, name: str) -> None:
        super().__init__(env, log_dir=log_dir, concurrency=2, name=name, extra_args=[f"--metrics-port={port}"])
        self.port = port


def celery_worker(env: dict[str, str], *, log_dir: Path, name: str, concurrency: int = 2) -> WorkerProcess:
    """`celery -A worker.app worker`: Celery's own command, no metrics."""
    node = WorkerProcess(env, log_dir=log_dir, concurrency=concurrency, name=name)
    node.command = [
        sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool=prefork",
        f"--concurrency={concurrency}", f"--hostname={node.node}",  # both lanes, as the app lists them
        "--loglevel=INFO", "--task-events",
    ]  # fmt: skip
    return node


@dataclass
class Monitored:
    """A queue of its own, its worker serving /metrics, and a client."""

    settings: Settings
    env: dict[str, str]
    worker: MetricsWorker
    client: Client

    def metrics_text(self) -> str:
        return metrics_text(self.worker.port)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return metric_samples(self.worker.port)

    def status(self, *args: str) -> Any:
        cmd = [sys.executable, "-m", "worker.cli", "status", "--json", "--timeout", "0.5", *args]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return lines[0] if len(lines) == 1 else lines


@pytest.fixture(scope="module")
def monitored(redis_url: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    settings, env = monitoring_env(redis_url, cache_dir, f"wasmq-mon-{uuid.uuid4().hex[:8]}")
    worker = MetricsWorker(env, log_dir=tmp_path_factory.mktemp("mon-log"), port=free_port(), name="mon")
    with Client(settings) as client:
        worker.start(client)
        try:
            yield Monitored(settings=settings, env=env, worker=worker, client=client)
        finally:
            worker.stop()
            forget_queue(settings)


def forget_queue(settings: Settings) -> None:
    """Remove what a test queue left in Redis: its counters and dead letters (slots expire by themselves)."""
    import redis

    from worker.keys import dead_entries_key, dead_order_key, stats_total_key

    with redis.Redis.from_url(settings.redis_url) as r:
        r.delete(stats_total_key(settings.queue), dead_entries_key(settings.queue), dead_order_key(settings.queue))
