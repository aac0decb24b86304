"""Shared fixtures: a real Redis (our own unless WASMQ_TEST_REDIS_URL is set) and real worker processes.

A Redis given through WASMQ_TEST_REDIS_URL is never flushed: every session uses a queue name of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.devtools.embedded_redis import EmbeddedRedis

pytest_plugins = ["tests.support.sandbox"]  # the sandbox fixtures, for every suite that runs calls in-process
ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = (ROOT / "modules" / "manifest.json", ROOT / "tests" / "corpora" / "hostile" / "manifest.json")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("WASMQ_TEST_REDIS_URL")
    if given:
        yield given
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmq-cache")


@pytest.fixture(scope="session")
def queue_settings(redis_url: str, cache_dir: Path) -> Settings:
    """Settings of this test session: our Redis, a queue name nobody else uses, both manifests."""
    return Settings(
        redis_url=redis_url,
        queue=f"wasmq-test-{uuid.uuid4().hex[:8]}",
        manifests=MANIFESTS,
        cache_dir=cache_dir,
        chunk_size=100,
    )


@pytest.fixture(scope="session")
def worker_env(queue_settings: Settings) -> dict[str, str]:
    return env_for(queue_settings)


@pytest.fixture(scope="session")
def client(queue_settings: Settings) -> Iterator[object]:
    from worker.producer.client import Client

    with Client(queue_settings) as c:
        yield c


@pytest.fixture(scope="session")
def worker(
    worker_env: dict[str, str], client: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One `wasmq worker` with a prefork pool of 2 processes, shared by the integration tests."""
    proc = WorkerProcess(worker_env, log_dir=tmp_path_factory.mktemp("worker-log"), concurrency=2)
    proc.start(client)  # type: ignore[arg-type]
    yield proc
    proc.stop()
