"""Real messages and real stored results held to the contract's JSON Schema (docs/contract/).

Messages as three kinds of producer make them: our `Client`, a plain Celery app that only knows the task
names (`send_task`, in order and by name), and a hand-made kombu message with no more headers than the
contract asks for. Each is taken off a queue no worker reads, checked against the schema, then handed to
the shared worker; what it stores (an output, a chunk with a failed item, typed errors from the sandbox,
from the arguments, from the intake) is checked against the schema too, and for server paths.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from tests.support.contract import MESSAGE, RESULT, ROOT, from_redis_entry, problems
from tests.support.workers import WorkerProcess
from worker.config import Settings
from worker.errors import JobTimeout
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.producer.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def capture(queue_settings: Settings) -> Iterator[tuple[Settings, redis.Redis]]:
    """A queue nobody consumes, to see messages as they are sent."""
    settings = queue_settings.with_(queue=f"{queue_settings.queue}-capture")
    with redis.Redis.from_url(settings.redis_url) as r:
        yield settings, r
        r.delete(*settings.lanes)


def plain_celery(settings: Settings) -> Celery:
    """A producer that knows nothing of wasmq but the task names and the contract."""
    app = Celery("foreign", broker=settings.broker, backend=settings.backend, set_as_current=False)
    app.conf.task_default_queue = settings.queue
    return app


def _produce(capture: tuple[Settings, redis.Redis]) -> dict[str, bytes]:
    settings, r = capture
    made: dict[str, Callable[[], Any]] = {}
    with Client(settings) as client:
        made["client submit"] = lambda: client.submit("greeting", "greet", "Alice", fuel=10_000_000)
        made["client submit, a trap"] = lambda: client.submit("trap", "divide", "x")

        def chunk() -> None:
            with pytest.raises(JobTimeout):
                client.map("greeting", "greet", ["a", "b", "x" * (1024 * 1024 + 1)], timeout=0.01)

        made["client map"] = chunk
        foreign = plain_celery(settings)
        made["celery send_task in order"] = lambda: foreign.send_task(CALL_TASK, args=["greeting", "greet", "Bo"])
        made["celery send_task by name"] = lambda: foreign.send_task(
            CALL_MANY_TASK, kwargs={"module": "greeting", "function": "greet", "inputs": ["c", "d"]}
        )
        made["celery send_task mixed"] = lambda: foreign.send_task(
            CALL_TASK, args=["greeting"], kwargs={"function": "greet", "input": "Cy", "limits": {"fuel": 10**6}}
        )
        made["celery send_task, an unknown name"] = lambda: foreign.send_task(
            CALL_TASK, args=["greeting", "greet"], kwargs={"text": "typo"}
        )
        made["kombu by hand"] = lambda: _by_hand(settings, [["greeting", "greet", "Di"], {}, None])
        made["kombu by hand, a callback"] = lambda: _by_hand(
            settings, [["greeting", "greet", "Ed"], {}, {"callbacks": [{"task": "evil"}]}]
        )
        entries = {}
        for name, send in made.items():
            send()
            for lane in settings.lanes:  # single jobs, and the batch lane the client sends chunks to
                while (entry := r.rpop(lane)) is not None:
                    entries[f"{name} #{len(entries)}"] = entry
        foreign.close()
    return entries


def _by_hand(settings: Settings, body: list[Any]) -> None:
    with Connection(settings.broker) as conn:
        conn.Producer().publish(
            json.dumps(body).encode(), routing_key=settings.queue, exchange="", content_type="application/json",
            content_encoding="utf-8", headers={"task": CALL_TASK, "id": str(uuid.uuid4())},
        )  # fmt: skip


REFUSED = ("an unknown name", "a callback")  # not the contract's: their results say so


def test_real_messages_and_their_results_keep_the_contract(
    capture: tuple[Settings, redis.Redis], client: Client, worker: WorkerProcess
) -> None:
    entries = _produce(capture)
    assert len(entries) == 9  # one message each
    _, r = capture
    ids = {}
    for name, entry in entries.items():
        message = from_redis_entry(entry)
        found = problems(MESSAGE, message)
        assert (found == []) != any(why in name for why in REFUSED), (name, found)
        ids[name] = message["headers"]["id"]
        r.lpush(client.settings.queue, entry)  # now the worker gets it, as it was sent
    backend = client.app.backend
    stored: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 120
    while len(stored) < len(ids) and time.monotonic() < deadline:
        for name, task_id in ids.items():
            raw = backend.client.get(backend.get_key_for_task(task_id))
            if raw is not None and json.loads(raw)["status"] in ("SUCCESS", "FAILURE"):
                stored[name] = json.loads(raw)
                text = raw.decode()
                assert str(ROOT) not in text and "Traceback" not in text, name
        time.sleep(0.05)
    assert set(stored) == set(ids)
    for name, meta in stored.items():
        assert problems(RESULT, meta) == [], (name, meta)
    kinds = {name.split(" #")[0]: meta for name, meta in stored.items()}
    assert kinds["client submit"]["result"]["output"] == "Hello World, Alice!"
    assert kinds["client submit, a trap"]["result"]["exc_type"] == "ModuleTrap"
    chunk = kinds["client map"]["result"]  # the lean shape: outputs, errors by index, one usage
    assert chunk["outputs"] == ["Hello World, a!", "Hello World, b!", None] and chunk["usage"]["fuel"] > 0
    assert [(i, e["type"]) for i, e in chunk["errors"]] == [(2, "InvalidInput")]
    assert kinds["celery send_task by name"]["result"]["outputs"] == ["Hello World, c!", "Hello World, d!"]
    assert kinds["celery send_task mixed"]["result"]["output"] == "Hello World, Cy!"
    assert kinds["celery send_task, an unknown name"]["result"]["exc_type"] == "InvalidInput"
    assert kinds["kombu by hand"]["result"]["output"] == "Hello World, Di!"
    error = kinds["kombu by hand, a callback"]["result"]
    assert error["exc_type"] == "MalformedMessage" and "may name only wasmq tasks" in error["exc_message"][1]["message"]
