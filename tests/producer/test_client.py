"""Fast unit tests of the producer against fakeredis: what reaches the queue, and what never does."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from celery.backends.redis import RedisBackend
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.transport import redis as kombu_redis

from tests.conftest import MANIFESTS
from worker.catalog import ModuleCatalog
from worker.chunk_result import STEP
from worker.config import Settings
from worker.errors import InvalidInput, JobTimeout, ModuleNotFound
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.producer.chunks import message_budget
from worker.producer.client import Client
from worker.queue.contract import MAX_CHUNK_ITEMS

QUEUE = "wasmq-unit"
BATCH = f"{QUEUE}.batch"  # where chunks go (Settings.batch_lane)


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    server = fakeredis.FakeServer()
    monkeypatch.setattr(kombu_redis.Channel, "_create_client", lambda self, **_: fakeredis.FakeRedis(server=server))
    monkeypatch.setattr(RedisBackend, "_create_client", lambda self, **_: fakeredis.FakeRedis(server=server))
    return server


@pytest.fixture
def client(fake_server: fakeredis.FakeServer) -> Iterator[Client]:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue=QUEUE, manifests=MANIFESTS, cache_dir=None)
    with Client(settings, catalog=ModuleCatalog.from_manifests(MANIFESTS)) as c:  # the seed alone, no registry
        yield c


def queued(server: fakeredis.FakeServer, lane: str = QUEUE) -> list[dict[str, Any]]:
    """The messages waiting in a queue (single jobs, or the batch lane), oldest first, decoded from JSON
    (never unpickled)."""
    raw = fakeredis.FakeRedis(server=server).lrange(lane, 0, -1)
    messages = [json.loads(m) for m in reversed(raw)]
    for message in messages:
        assert message["content-type"] == "application/json"
        message["decoded"] = json.loads(base64.b64decode(message["body"]))
    return messages


def test_submit_enqueues_one_json_message(client: Client, fake_server: fakeredis.FakeServer) -> None:
    job = client.submit("greeting", "greet", "Alice", fuel=1000)
    [message] = queued(fake_server)
    assert message["headers"]["task"] == CALL_TASK
    assert message["headers"]["id"] == job.id
    args, kwargs, _ = message["decoded"]
    assert args == ["greeting", "greet", "Alice", {"fuel": 1000}] and kwargs == {}
    hard, soft = message["headers"]["timelimit"]
    assert soft < hard < client.settings.visibility_timeout_s


def test_a_chunks_time_limit_is_its_budget_and_one_step_whatever_its_size(client: Client) -> None:
    """The hard limit covers the longest a chunk can run: its budget, then one step of STEP inputs each
    running its batch call and every item alone to the deadline (1 s for the greeting), plus the margin."""
    lim = client.check("greeting", "greet", None)
    margin = client.settings.time_limit_margin_s
    for items in (STEP, 4 * STEP, MAX_CHUNK_ITEMS):
        assert client.options(lim, items, 5.0)["time_limit"] == math.ceil(5.0 + (STEP + 1) + margin)
    assert client.options(lim, 40, 5.0)["time_limit"] == math.ceil(5.0 + 41 + margin)
    assert client.options(lim, 40)["time_limit"] == math.ceil(41 + margin)  # no budget: every item
    with pytest.raises(InvalidInput, match="smaller chunks"):
        client.options(lim, 4000)  # 4001 deadlines without a budget: above the visibility timeout


def test_map_chunks_inputs_in_order(client: Client, fake_server: fakeredis.FakeServer) -> None:
    names = [f"n{i}" for i in range(25)]
    with pytest.raises(JobTimeout, match="did not finish"):
        client.map("greeting", "greet", names, chunk_size=10, timeout=0.01)
    assert queued(fake_server) == []  # chunks never wait in front of single jobs
    messages = queued(fake_server, BATCH)
    assert [m["headers"]["task"] for m in messages] == [CALL_MANY_TASK] * 3
    assert [m["decoded"][0][2] for m in messages] == [names[0:10], names[10:20], names[20:25]]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: c.submit("nope", "greet", "x"), ModuleNotFound, "no module named 'nope'"),
        (lambda c: c.submit("greeting@0.0.1", "greet", "x"), ModuleNotFound, "no version '0.0.1'"),
        (lambda c: c.submit("greeting", "nope", "x"), InvalidInput, "no function 'nope'"),
        (lambda c: c.submit("greeting", "greet", b"x"), InvalidInput, "must be a string"),
        (lambda c: c.submit("greeting", "greet", "x", fuel=10**15), InvalidInput, "above this module's maximum"),
        (lambda c: c.submit("greeting", "greet", "x", fuel=-1), InvalidInput, "positive integer"),
        (lambda c: c.submit("greeting", "greet", "x", stack=1), InvalidInput, "unknown limit"),
        (lambda c: c.map("greeting", "greet", ["a", 3]), InvalidInput, "input 1 must be a string"),
        (lambda c: c.map("greeting", "greet", ["a"], chunk_size=0), InvalidInput, "chunk_size must be positive"),
        (lambda c: c.map("greeting", "greet", ["a"], chunk_size=10_001), InvalidInput, "at most 10000"),
    ],
)
def test_bad_requests_are_refused_before_enqueue(
    client: Client, fake_server: fakeredis.FakeServer, call: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(client)
    assert queued(fake_server) == [] and queued(fake_server, BATCH) == []


@pytest.fixture
def small_client(fake_server: fakeredis.FakeServer) -> Iterator[Client]:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue=QUEUE, manifests=MANIFESTS, cache_dir=None,
                        max_message_bytes=64 * 1024)  # fmt: skip
    with Client(settings) as c:
        yield c


def test_map_cuts_chunks_by_encoded_size_so_no_message_is_over_the_limit(
    small_client: Client, fake_server: fakeredis.FakeServer
) -> None:
    inputs = ["\x01" * 2000] * 40 + ["plain"] * 10  # 12 KB of JSON each: 40 of them are 480 KB
    with pytest.raises(JobTimeout):
        small_client.map("greeting", "greet", inputs, chunk_size=100, timeout=0.01)
    messages = queued(fake_server, BATCH)
    assert len(messages) > 7
    assert all(len(base64.b64decode(m["body"])) <= small_client.settings.max_message_bytes for m in messages)
    assert [item for m in messages for item in m["decoded"][0][2]] == inputs  # all of them, in order


def test_an_input_too_large_to_send_fails_alone(small_client: Client, fake_server: fakeredis.FakeServer) -> None:
    with pytest.raises(InvalidInput, match="above the message limit of"):
        small_client.submit("greeting", "greet", "\x01" * 20_000)
    assert queued(fake_server) == []
    with pytest.raises(JobTimeout):
        small_client.map("greeting", "greet", ["a", "\x01" * 20_000, "b"], timeout=0.01)
    [message] = queued(fake_server, BATCH)
    assert message["decoded"][0][2] == ["a", "b"]


def test_imap_reads_a_generator_lazily_and_keeps_the_window(client: Client, fake_server: fakeredis.FakeServer) -> None:
    """No worker answers here: the stream sends `window` chunks, then waits, reading no further input."""
    read: list[int] = []

    def endless() -> Iterator[str]:
        i = 0
        while True:
            read.append(i)
            yield f"n{i}"
            i += 1

    stream = client.imap("greeting", "greet", endless(), chunk_size=10, window=3, timeout=0.05)
    assert read == []  # nothing is read before the caller asks for the first outcome
    with pytest.raises(JobTimeout, match="did not finish"):
        next(stream)
    messages = queued(fake_server, BATCH)
    assert [m["decoded"][0][2] for m in messages] == [[f"n{i}" for i in range(k, k + 10)] for k in (0, 10, 20)]
    assert len(read) == 30


def test_imap_sizes_chunks_small_first_then_by_what_they_took() -> None:
    from worker.producer.sizing import START, ChunkSizer

    settings = Settings(redis_url="redis://127.0.0.1:1/0", chunk_size=500, chunk_target_s=0.25)
    sizer = ChunkSizer(settings)
    assert sizer.size() == START
    sizer.observe(START, 0.0001)  # fast items: grows, at most fourfold a step, never above chunk_size
    assert sizer.size() == 4 * START
    for _ in range(5):
        sizer.observe(sizer.size(), 0.0001 * sizer.size() / START)
    assert sizer.size() == 500
    for _ in range(10):
        sizer.observe(sizer.size(), sizer.size() * 0.05)  # 50 ms an item: five items make 0.25 s
    assert 5 <= sizer.size() <= 8
    fixed = ChunkSizer(settings, fixed=7)
    fixed.observe(7, 100.0)
    assert fixed.size() == 7


def test_imap_answers_a_wrong_input_in_its_place_and_never_ends_early_on_it(
    client: Client, fake_server: fakeredis.FakeServer
) -> None:
    outcomes = list(client.imap("greeting", "greet", iter([None, 3, b"x"])))  # type: ignore[list-item]
    assert [o.error.type if o.error else None for o in outcomes] == ["InvalidInput"] * 3
    assert outcomes[0].error is not None and "input 0 must be a string, not NoneType" in outcomes[0].error.message
    assert queued(fake_server, BATCH) == []  # nothing to send


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=3000), max_size=60), st.integers(min_value=1, max_value=30))
def test_the_stream_cuts_chunks_that_cover_every_input_in_order_and_fit(inputs: list[str], size: int) -> None:
    server = fakeredis.FakeServer()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kombu_redis.Channel, "_create_client", lambda self, **_: fakeredis.FakeRedis(server=server))
        mp.setattr(RedisBackend, "_create_client", lambda self, **_: fakeredis.FakeRedis(server=server))
        small = Settings(redis_url="redis://127.0.0.1:1/0", queue=QUEUE, manifests=MANIFESTS, cache_dir=None,
                         max_message_bytes=64 * 1024)  # fmt: skip
        with Client(small, catalog=ModuleCatalog.from_manifests(MANIFESTS)) as c:
            stream = c.imap("greeting", "greet", iter(inputs), chunk_size=size, window=1000, timeout=0.001)
            refused = []
            try:
                refused = [o for o in stream if o.error is not None]  # only the refused ones can come back here
            except JobTimeout:
                pass
            messages = queued(server, BATCH)
    sent = [item for m in messages for item in m["decoded"][0][2]]
    budget = message_budget(small)
    assert sent == [t for t in inputs if len(json.dumps(t)) + 2 <= budget]  # every sendable input, in order
    for m in messages:
        assert 0 < len(m["decoded"][0][2]) <= size and len(json.dumps(m["decoded"][0][2])) <= budget
    assert all(o.error is not None and o.error.type == "InvalidInput" for o in refused)
