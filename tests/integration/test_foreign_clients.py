"""Any Celery client can use wasmq: jobs sent from Node.js with celery-node, and from plain Celery canvas
(group, chain of immutable signatures, chord), are served by a real worker and their results and typed errors
read back by those clients."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, chain, chord, group, signature

from tests.support.workers import WorkerProcess
from worker.config import Settings

pytestmark = pytest.mark.integration
CELERY_NODE = Path(__file__).resolve().parents[1] / "clients" / "celery_node"


def test_celery_node_sends_jobs_and_reads_results_and_errors(queue_settings: Settings, worker: WorkerProcess) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the celery-node client test (apt-get install nodejs)"
    assert (CELERY_NODE / "node_modules" / "celery-node").is_dir(), f"run: npm ci --prefix {CELERY_NODE}"
    done = subprocess.run(
        [node, str(CELERY_NODE / "send.js"), queue_settings.redis_url, queue_settings.queue],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["greet"]["status"] == "SUCCESS"
    assert rows["greet"]["result"]["output"] == "Hello World, Zoë from Node!"
    assert rows["many"]["result"]["outputs"] == ["Hello World, Ada!", "Hello World, José!"]
    for name, error_type in [
        ("trap", "ModuleTrap"),
        ("unknown-module", "ModuleNotFound"),
        ("wrong-type", "InvalidInput"),
    ]:
        assert rows[name]["status"] == "FAILURE", rows[name]
        assert rows[name]["error"]["exc_type"] == error_type, rows[name]


@pytest.fixture(scope="module")
def plain(queue_settings: Settings) -> Iterator[Celery]:
    """A plain Celery app that knows nothing of wasmq: JSON, the same Redis, the wasmq queue."""
    app = Celery("foreign", broker=queue_settings.redis_url, backend=queue_settings.redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    task_default_queue=queue_settings.queue)  # fmt: skip
    yield app
    app.close()


def call(app: Celery, name: str, *, immutable: bool = True) -> Any:
    return signature("wasmq.call", args=["greeting", "greet", name, None], app=app, immutable=immutable)


def test_group_of_wasmq_calls(plain: Celery, worker: WorkerProcess) -> None:
    results = group(call(plain, n) for n in ["Ada", "Bob", "Zoë"]).apply_async().get(timeout=60)
    assert [r["output"] for r in results] == ["Hello World, Ada!", "Hello World, Bob!", "Hello World, Zoë!"]


def test_chain_of_immutable_signatures(plain: Celery, worker: WorkerProcess) -> None:
    result = chain(call(plain, "first"), call(plain, "second")).apply_async()
    assert result.get(timeout=60)["output"] == "Hello World, second!"
    assert result.parent is not None and result.parent.get(timeout=60)["output"] == "Hello World, first!"


def test_chord_with_a_wasmq_callback(plain: Celery, worker: WorkerProcess) -> None:
    header = [call(plain, n) for n in ["a", "b"]]
    body = signature("wasmq.call_many", args=["greeting", "greet", ["done"], None], app=plain, immutable=True)
    result = chord(header)(body)
    assert result.get(timeout=60)["outputs"] == ["Hello World, done!"]


def test_a_typed_error_reaches_a_plain_celery_client(plain: Celery, worker: WorkerProcess) -> None:
    result = signature("wasmq.call", args=["trap", "greet", "x", None], app=plain).apply_async()
    with pytest.raises(Exception) as info:
        result.get(timeout=60)
    assert type(info.value).__name__ == "ModuleTrap"
    assert result.state == "FAILURE"
