"""Who holds which unacknowledged message (worker/queue/unacked.py), against a real Redis through kombu.

Each test plays two worker nodes as two kombu connections recording different holders (`wasmq_node`), and
the dead node's messages are handed back with `hand_back`, as the reaper does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from kombu import Connection

from worker.keys import HOLDERS_KEY, node_alive_key
from worker.queue.unacked import hand_back

pytestmark = pytest.mark.integration
TRANSPORT = "worker.queue.transport:Transport"


@contextmanager
def node(redis_url: str, name: str, queue: str) -> Iterator[Any]:
    """A kombu SimpleQueue on `queue` whose deliveries are recorded as held by `name`."""
    with Connection(redis_url, transport=TRANSPORT, transport_options={"wasmq_node": name}) as conn:
        simple = conn.SimpleQueue(queue)
        try:
            yield simple
        finally:
            simple.close()


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"wasmq-test-unacked-{uuid.uuid4().hex[:8]}"
    yield name
    with redis.Redis.from_url(redis_url) as r:
        r.delete(name)


def holder(r: redis.Redis, tag: str) -> str | None:
    value = r.hget(HOLDERS_KEY, tag)
    return value.decode() if value is not None else None


def test_the_holder_is_recorded_with_the_delivery_and_forgotten_with_the_ack(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with node(redis_url, "node-a", queue) as a:
        a.put({"n": 1})
        message = a.get(timeout=5)
        tag = message.delivery_tag
        assert holder(r, tag) == "node-a"
        assert r.hexists("unacked", tag) and r.zscore("unacked_index", tag) is not None
        message.ack()
        assert holder(r, tag) is None
        assert not r.hexists("unacked", tag) and r.zscore("unacked_index", tag) is None


def test_a_rejected_message_is_forgotten_and_a_requeued_one_goes_back(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with node(redis_url, "node-a", queue) as a:
        a.put({"n": 1})
        a.put({"n": 2})
        first = a.get(timeout=5)
        first.reject()
        assert holder(r, first.delivery_tag) is None and not r.hexists("unacked", first.delivery_tag)
        second = a.get(timeout=5)
        second.requeue()
        assert holder(r, second.delivery_tag) is None and r.llen(queue) == 1
        again = a.get(timeout=5)
        assert again.payload == {"n": 2} and again.delivery_tag == second.delivery_tag
        again.ack()


def test_a_node_that_comes_back_neither_acks_nor_requeues_what_another_node_took(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with node(redis_url, "node-a", queue) as a, node(redis_url, "node-b", queue) as b:
        a.put({"n": 1})
        late = a.get(timeout=5)
        tag = late.delivery_tag
        returned = hand_back(b.channel, "node-a")  # node-a is silent: no key of its own
        assert returned is not None and [h.tag for h in returned] == [tag] and returned[0].queues == (queue,)
        assert r.llen(queue) == 1 and holder(r, tag) is None
        taken = b.get(timeout=5)
        assert taken.delivery_tag == tag  # delivery tags survive redelivery
        assert taken.delivery_info.get("redelivered") or taken.headers.get("redelivered")
        assert holder(r, tag) == "node-b"

        late.ack()  # node-a finishes late: this must not erase node-b's records of the same tag
        assert holder(r, tag) == "node-b" and r.hexists("unacked", tag)
        a.channel.qos.restore_by_tag(tag, leftmost=True)  # nor may a late requeue copy it back into the queue
        assert r.llen(queue) == 0 and holder(r, tag) == "node-b" and r.hexists("unacked", tag)

        taken.ack()
        assert holder(r, tag) is None and not r.hexists("unacked", tag)


def test_nothing_is_handed_back_for_a_node_that_is_alive(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with node(redis_url, "node-alive", queue) as a, node(redis_url, "node-b", queue) as b:
        a.put({"n": 1})
        message = a.get(timeout=5)
        r.set(node_alive_key("node-alive"), "1", px=10_000)
        try:
            assert hand_back(b.channel, "node-alive") is None
            assert r.llen(queue) == 0 and holder(r, message.delivery_tag) == "node-alive"
        finally:
            r.delete(node_alive_key("node-alive"))
        message.ack()
        assert hand_back(b.channel, "node-alive") == []


def test_the_visibility_timeout_sweep_still_gives_back_any_holders_message(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with node(redis_url, "node-a", queue) as a, node(redis_url, "node-b", queue) as b:
        a.put({"n": 1})
        stuck = a.get(timeout=5)
        tag = stuck.delivery_tag
        r.zadd("unacked_index", {tag: time.time() - 10 * b.channel.visibility_timeout})  # long past the timeout
        b.channel.qos.restore_visible(num=1000, interval=1)
        assert r.llen(queue) == 1 and holder(r, tag) is None and not r.hexists("unacked", tag)
        b.get(timeout=5).ack()
