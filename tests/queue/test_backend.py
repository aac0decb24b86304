"""The worker's result backend (worker/queue/backend.py) against a real Redis: typed errors any Celery client
reads, no traceback and no server path, arguments cut short, nothing over the result limit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery.exceptions import TimeLimitExceeded
from celery.states import FAILURE, SUCCESS

from worker.config import Settings
from worker.errors import InvalidInput
from worker.queue.app import make_app
from worker.queue.backend import WasmqRedisBackend

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend(redis_url: str) -> WasmqRedisBackend:
    app = make_app(Settings(redis_url=redis_url, queue=f"backend-{uuid.uuid4().hex[:6]}"))
    assert isinstance(app.backend, WasmqRedisBackend)
    return app.backend


def stored(backend: WasmqRedisBackend, task_id: str) -> dict[str, Any]:
    raw = redis.Redis.from_url(backend.url).get(backend.get_key_for_task(task_id))
    assert raw is not None
    return dict(json.loads(raw))


def test_a_typed_error_is_stored_with_type_message_and_retryable(backend: WasmqRedisBackend) -> None:
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, InvalidInput("'input' must be a string", job_id=task_id), FAILURE, traceback="tb")
    meta = stored(backend, task_id)
    assert meta["status"] == FAILURE and meta["traceback"] is None
    exc = meta["result"]
    assert exc["exc_type"] == "InvalidInput" and exc["exc_module"] == "worker.errors"
    message, error = exc["exc_message"]
    assert message == "'input' must be a string"
    assert error == {"type": "InvalidInput", "message": message, "retryable": False, "job_id": task_id}


def test_celerys_own_exceptions_are_stored_as_typed_errors_without_server_paths(backend: WasmqRedisBackend) -> None:
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, TimeLimitExceeded(35.0), FAILURE)
    assert stored(backend, task_id)["result"]["exc_type"] == "DeadlineExceeded"
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, OSError("cannot open /srv/wasmq/secret/layout.wasm"), FAILURE)
    exc = stored(backend, task_id)["result"]
    assert exc["exc_type"] == "JobFailed"
    assert "/srv" not in json.dumps(exc) and "layout.wasm" in exc["exc_message"][0]


def test_extended_arguments_are_cut_short(backend: WasmqRedisBackend) -> None:
    task_id = str(uuid.uuid4())
    request = SimpleNamespace(
        task="wasmq.call", args=["greeting", "greet", "x" * 10_000_000, None], kwargs={"k": ["v"] * 10_000},
        hostname="w@h", retries=0, delivery_info={"routing_key": "q"}, group=None, parent_id=None, children=[],
        stamps=None,
    )  # fmt: skip
    backend.store_result(task_id, InvalidInput("too large"), FAILURE, request=request)
    meta = stored(backend, task_id)
    assert meta["name"] == "wasmq.call" and meta["args"][:2] == ["greeting", "greet"]
    assert len(json.dumps(meta)) < 10_000


def test_no_stored_result_is_over_the_limit(redis_url: str) -> None:
    app = make_app(Settings(redis_url=redis_url, max_result_bytes=64 * 1024))
    task_id = str(uuid.uuid4())
    app.backend.store_result(task_id, {"output": "\x01" * 20_000}, SUCCESS)  # 120 KB of JSON
    meta = stored(app.backend, task_id)
    assert meta["status"] == FAILURE and meta["result"]["exc_type"] == "InvalidOutput"
    assert "above WASMQ_MAX_RESULT_BYTES=65536" in meta["result"]["exc_message"][0]
    assert meta["task_id"] == task_id


FOREIGN_CLIENT = textwrap.dedent(
    """
    import sys
    from celery import Celery
    app = Celery(backend=sys.argv[1], broker="memory://")
    try:
        app.AsyncResult(sys.argv[2]).get(timeout=10)
    except Exception as exc:
        assert "worker" not in sys.modules and "worker.errors" not in sys.modules
        print(type(exc).__name__, exc.args[0], exc.args[1]["type"], exc.args[1]["retryable"], sep="|")
    """
)


def test_a_celery_client_without_wasmq_reads_the_typed_error(backend: WasmqRedisBackend, redis_url: str) -> None:
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, InvalidInput("'limits' must be an object"), FAILURE)
    done = subprocess.run(
        [sys.executable, "-c", FOREIGN_CLIENT, redis_url, task_id], capture_output=True, text=True, timeout=60,
        check=False, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "InvalidInput|'limits' must be an object|InvalidInput|False"
