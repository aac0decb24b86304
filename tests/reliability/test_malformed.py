"""Foreign producers pushing broken messages straight into the queue: each is dead-lettered with a reason,
and the worker keeps serving (same pool processes before and after)."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.reliability.conftest import Scenario
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.producer.client import Client

pytestmark = pytest.mark.reliability

Envelope = dict[str, Any]


def template(client: Client) -> Envelope:
    """A real task message as this client would enqueue it, taken off the queue again as a model."""
    r = redis.Redis.from_url(client.settings.redis_url)
    client.submit("greeting", "greet", "template")
    raw = r.rpop(client.settings.queue)
    assert raw is not None
    return dict(json.loads(raw))


def with_body(env: Envelope, body: Any, *, raw: bytes | None = None) -> Envelope:
    out = copy.deepcopy(env)
    data = raw if raw is not None else json.dumps(body).encode()
    out["body"] = base64.b64encode(data).decode()
    out["headers"]["id"] = str(uuid.uuid4())
    out["properties"]["correlation_id"] = out["headers"]["id"]
    return out


def with_task(env: Envelope, name: str | None, args: list[Any], kwargs: Any = None) -> Envelope:
    out = with_body(env, [args, kwargs if kwargs is not None else {}, {}])
    if name is None:
        del out["headers"]["task"]
    else:
        out["headers"]["task"] = name
    return out


def pickled(env: Envelope) -> Envelope:
    out = with_body(env, None, raw=b"\x80\x04\x95pickle-bytes-that-must-never-be-loaded")
    out["content-type"] = "application/x-python-serialize"
    out["content-encoding"] = "binary"
    return out


MALFORMED: list[tuple[str, Callable[[Envelope], Envelope | bytes]]] = [
    ("body not JSON", lambda e: with_body(e, None, raw=b"{not json")),
    ("pickle content type", pickled),
    ("body wrong schema", lambda e: with_body(e, {"args": "nope"})),
    ("unknown task", lambda e: with_task(e, "wasmq.nope", ["greeting", "greet", "x", None])),
    ("no task name", lambda e: with_task(e, None, ["greeting", "greet", "x", None])),
    ("module not a string", lambda e: with_task(e, CALL_TASK, [123, "greet", "x", None])),
    ("too few arguments", lambda e: with_task(e, CALL_TASK, ["greeting"])),
    ("input not a string", lambda e: with_task(e, CALL_TASK, ["greeting", "greet", {"a": 1}, None])),
    ("limits not an object", lambda e: with_task(e, CALL_TASK, ["greeting", "greet", "x", [1]])),
    ("oversize input", lambda e: with_task(e, CALL_TASK, ["greeting", "greet", "x" * (2 * 1024 * 1024), None])),
    ("inputs not a list", lambda e: with_task(e, CALL_MANY_TASK, ["greeting", "greet", "abc", None])),
    ("kwargs not an object", lambda e: with_task(e, CALL_TASK, ["greeting", "greet", "x"], kwargs=[1, 2])),
    ("envelope not JSON", lambda e: b"\x00\xffthis is not a kombu envelope"),
]


def test_hundred_malformed_messages_are_dead_lettered(scenario: Scenario) -> None:
    with scenario.client() as client:
        model = template(client)
        worker = scenario.start_worker(client)
        pids = worker.pool_pids(client)
        r = redis.Redis.from_url(client.settings.redis_url)
        kinds = [MALFORMED[i % len(MALFORMED)] for i in range(100)]
        kind_of: dict[str, str] = {}
        for kind, make in kinds:
            message = make(model)
            if isinstance(message, dict):
                kind_of[message["headers"]["id"]] = kind
            r.lpush(client.settings.queue, message if isinstance(message, bytes) else json.dumps(message))
        dead = scenario.dead()
        good = client.map("greeting", "greet", [f"after-{i}" for i in range(50)], chunk_size=5, timeout=120)
        assert [o.output for o in good] == [f"Hello World, after-{i}!" for i in range(50)]

        deadline = time.monotonic() + 60
        while dead.size() < 100 and time.monotonic() < deadline:
            time.sleep(0.2)
        entries = dead.list()
        seen = {kind_of.get(e.id, "envelope not JSON") for e in entries}
        assert seen == {kind for kind, _ in MALFORMED}, f"not dead-lettered: { ({k for k, _ in MALFORMED} - seen) }"
        assert len(entries) == 100
        assert all(e.error.get("message") for e in entries)
        assert worker.alive() and worker.pool_pids(client) == pids
        assert client.submit("greeting", "greet", "still here").get(timeout=60) == "Hello World, still here!"
        scenario.messages = 100
        scenario.report(submitted=100, outcomes=[], progress_done=100, dead=len(entries))
