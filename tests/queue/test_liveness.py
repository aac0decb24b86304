"""Liveness (worker/queue/liveness.py): the heartbeat and the judgement of others on fakeredis with a fake
clock; the reaper, which routes messages through kombu and locks with Lua, against a real Redis.

The real-process scenarios (a node SIGKILLed, one paused past its timeout, a long job) are in
tests/reliability/test_node_loss.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from kombu import Connection

from worker.config import Settings
from worker.keys import HOLDERS_KEY, NODES_KEY, REAPER_LOCK_KEY, node_alive_key
from worker.monitoring import nodes
from worker.queue.liveness import Liveness, check_interval

TRANSPORT = "worker.queue.transport:Transport"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(liveness: Liveness, clock: Clock, seconds: float) -> None:
    """Beat every beat interval for `seconds`, as the heartbeat thread would."""
    end = clock.now + seconds
    while clock.now < end:
        assert liveness.beat()
        clock.now += liveness.beat_s
    assert liveness.beat()


def make(client: Any, name: str, timeout_s: float = 3.0, **kw: Any) -> tuple[Liveness, Clock]:
    clock = Clock()
    settings = Settings(node_timeout_s=timeout_s)
    return Liveness(settings, name=name, queues=["q"], client=client, clock=clock, **kw), clock


def test_a_beat_sets_a_key_that_expires_after_the_node_timeout_and_keeps_the_registry_entry() -> None:
    r = fakeredis.FakeRedis()
    liveness, _ = make(r, "w1@host", timeout_s=4.0)
    assert liveness.beat()
    ttl_ms = r.pttl(node_alive_key(liveness.node_id))
    assert 3000 < ttl_ms <= 4000
    info = json.loads(r.hget(NODES_KEY, liveness.node_id))
    assert info["name"] == "w1@host" and info["queues"] == ["q"] and info["timeout_s"] == 4.0 and info["beat_at"]
    assert liveness.node_id.startswith("w1@host#")
    assert liveness.beat_s == pytest.approx(4.0 / 3) and liveness.check_s == pytest.approx(0.8)
    assert (check_interval(0.1), check_interval(15.0), check_interval(600.0)) == (0.2, 3.0, 5.0)


def test_leaving_removes_the_key_and_the_registry_entry() -> None:
    r = fakeredis.FakeRedis()
    liveness, _ = make(r, "w1@host")
    liveness.beat()
    liveness.stop()
    assert not r.exists(node_alive_key(liveness.node_id)) and not r.hexists(NODES_KEY, liveness.node_id)


def test_a_node_judges_others_only_after_watching_for_their_whole_timeout() -> None:
    r = fakeredis.FakeRedis()
    me, clock = make(r, "me", timeout_s=3.0)
    assert not me.steady_for(0.0)  # never beaten
    me.beat()
    assert me.steady_for(0.0) and not me.steady_for(3.0)
    watch(me, clock, 3.0)
    assert me.steady_for(3.0)
    clock.now += 3.5  # this node was paused (or Redis away) longer than its own timeout
    assert not me.steady_for(0.0)
    me.beat()
    assert me.steady_for(0.0) and not me.steady_for(1.0)  # watching anew


def test_a_failed_beat_starts_the_watch_anew() -> None:
    server = fakeredis.FakeServer()
    me, clock = make(fakeredis.FakeRedis(server=server), "me")
    watch(me, clock, 5.0)
    assert me.steady_for(3.0)
    server.connected = False  # every command now fails as on a lost connection
    assert not me.beat()
    server.connected = True
    assert me.beat() and not me.steady_for(1.0)


def register_silent(r: Any, node: str, timeout_s: float, **info: Any) -> None:
    r.hset(NODES_KEY, node, json.dumps({"name": node.partition("#")[0], "timeout_s": timeout_s, **info}))


def test_dead_are_the_registered_nodes_whose_key_expired_once_watched_long_enough() -> None:
    r = fakeredis.FakeRedis()
    me, clock = make(r, "me", timeout_s=2.0)
    other, _ = make(r, "alive", timeout_s=2.0)
    other.beat()
    silent = f"silent#{uuid.uuid4().hex[:8]}"
    patient = f"patient#{uuid.uuid4().hex[:8]}"
    register_silent(r, silent, 1.0)
    register_silent(r, patient, 10.0)  # its own timeout is longer than mine: I wait for that long
    r.hset(NODES_KEY, "garbage#1", b"\xff not json")
    watch(me, clock, 2.0)
    other.beat()
    assert sorted(n for n, _ in me.find_dead()) == sorted([silent, "garbage#1"])
    watch(me, clock, 10.0)
    other.beat()
    dead = dict(me.find_dead())
    assert sorted(dead) == sorted([silent, patient, "garbage#1"])
    assert dead[silent]["timeout_s"] == 1.0 and dead["garbage#1"] == {}
    assert me.node_id not in dead and other.node_id not in dead


def test_a_node_declared_dead_says_so_at_its_next_beat_and_registers_again(caplog: pytest.LogCaptureFixture) -> None:
    r = fakeredis.FakeRedis()
    me, _ = make(r, "me")
    me.beat()
    r.hdel(NODES_KEY, me.node_id)  # what a reaper does once it has handed back this node's messages
    with caplog.at_level(logging.WARNING, logger="wasmq.liveness"):
        assert me.beat()
    assert "declared dead" in caplog.text and r.hexists(NODES_KEY, me.node_id)


# -- the reaper, against a real Redis ------------------------------------------------------------------


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"wasmq-test-liveness-{uuid.uuid4().hex[:8]}"
    yield name
    with redis.Redis.from_url(redis_url) as r:
        r.delete(name, f"wasmq:{name}:nodes:dead", f"wasmq:{name}:nodes:dead:total")


def connection(redis_url: str, node: str | None = None) -> Connection:
    return Connection(redis_url, transport=TRANSPORT, transport_options={"wasmq_node": node} if node else {})


def reaper(redis_url: str, r: redis.Redis) -> tuple[Liveness, Clock]:
    me, clock = make(r, f"reaper-{uuid.uuid4().hex[:6]}", timeout_s=1.0, connection=lambda: connection(redis_url))
    watch(me, clock, 1.0)
    return me, clock


@pytest.mark.integration
def test_the_reaper_hands_back_a_dead_nodes_messages_and_records_it(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    dead = f"gone@host#{uuid.uuid4().hex[:8]}"
    register_silent(r, dead, 1.0, queues=[queue], pid=4242, host="host-a", beat_at=1.0)
    me, _ = reaper(redis_url, r)
    with connection(redis_url, dead) as conn:
        simple = conn.SimpleQueue(queue)
        for n in range(3):
            simple.put({"n": n})
        held = [simple.get(timeout=5) for _ in range(3)]
        assert {r.hget(HOLDERS_KEY, m.delivery_tag) for m in held} == {dead.encode()}
        try:
            events = [e for e in me.reap() if e.node == dead]
            assert r.llen(queue) == 3 and not r.hexists(NODES_KEY, dead)
            assert all(r.hget(HOLDERS_KEY, m.delivery_tag) is None for m in held)
            assert len(events) == 1 and events[0].messages == 3 and events[0].by == me.node_id
            record = nodes.read(r, queue)
            assert (record.nodes, record.messages) == (1, 3)
            event = record.recent[0]
            assert (event.node, event.name, event.pid, event.host, event.last_beat_at) == (
                dead, dead.partition("#")[0], 4242, "host-a", 1.0)  # fmt: skip
            assert me.reap() == [] or all(e.node != dead for e in me.reap())  # recorded once
        finally:
            simple.clear()
            simple.close()
    me.stop()


@pytest.mark.integration
def test_two_reapers_at_once_hand_back_each_message_once(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    dead = f"gone@host#{uuid.uuid4().hex[:8]}"
    register_silent(r, dead, 1.0, queues=[queue])
    reapers = [reaper(redis_url, r)[0] for _ in range(2)]
    with connection(redis_url, dead) as conn:
        simple = conn.SimpleQueue(queue)
        for n in range(20):
            simple.put({"n": n})
        held = [simple.get(timeout=5) for _ in range(20)]
        try:
            threads = [threading.Thread(target=me.reap) for me in reapers for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert r.llen(queue) == 20 and all(r.hget(HOLDERS_KEY, m.delivery_tag) is None for m in held)
            assert nodes.read(r, queue).nodes == 1 and nodes.read(r, queue).messages == 20
        finally:
            simple.clear()
            simple.close()
    for me in reapers:
        me.stop()


@pytest.mark.integration
def test_no_reaping_while_another_node_holds_the_lock(redis_url: str, queue: str) -> None:
    r = redis.Redis.from_url(redis_url)
    dead = f"gone@host#{uuid.uuid4().hex[:8]}"
    register_silent(r, dead, 1.0, queues=[queue])
    me, _ = reaper(redis_url, r)
    lock = r.lock(REAPER_LOCK_KEY, timeout=30)
    assert lock.acquire(blocking=True, blocking_timeout=30)
    try:
        assert me.reap() == [] and r.hexists(NODES_KEY, dead)
    finally:
        lock.release()
    assert any(e.node == dead for e in me.reap())
    me.stop()


def test_the_heartbeat_thread_survives_a_bug(caplog: pytest.LogCaptureFixture) -> None:
    r = fakeredis.FakeRedis()
    me, _ = make(r, "me", timeout_s=0.3)
    calls: list[int] = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) == 2:  # the first beat is start()'s own; the thread's first one fails
            raise RuntimeError("a bug")
        return Liveness.beat(me)

    me.beat = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="wasmq.liveness"):
        me.start()
        deadline = time.monotonic() + 10
        while len(calls) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        me.stop()
    assert "wasmq-heartbeat failed" in caplog.text and r.hlen(NODES_KEY) == 0
