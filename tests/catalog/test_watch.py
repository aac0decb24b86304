"""Change notices: which names changed, told by the notices pushed on the registry's channel, with the
revision counter as the safety net for a notice that never arrived (a gap, a silent change, a lost
connection)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from worker.catalog.registry import Registry
from worker.catalog.watch import EVERYTHING, ChangeWatch
from worker.keys import REGISTRY_CHANNEL, REGISTRY_REV


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as r:
        yield r


@pytest.fixture
def watch(redis_url: str) -> Iterator[ChangeWatch]:
    registry = Registry(redis_url, max_module_bytes=1 << 20)
    found = ChangeWatch(registry, poll_s=3600)
    yield found
    found.close()
    registry.close()


def announce(server: redis.Redis, name: str, *, skip: int = 0) -> None:
    """What a publication does: count the revision (`skip` more times, as if notices were lost), announce."""
    for _ in range(skip):
        server.incr(REGISTRY_REV)
    rev = server.incr(REGISTRY_REV)
    server.publish(REGISTRY_CHANNEL, json.dumps({"rev": rev, "name": name, "version": "1", "action": "published"}))


def changes_soon(watch: ChangeWatch, timeout: float = 10.0) -> set[str] | None:
    """The first non-empty answer (a notice takes a moment to arrive)."""
    deadline = time.monotonic() + timeout
    while True:
        found = watch.changes()
        if found is EVERYTHING or found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_notices_name_what_changed(watch: ChangeWatch, server: redis.Redis) -> None:
    assert watch.changes() is EVERYTHING, "the first look subscribes: nothing is known yet"
    assert watch.changes() == set()
    announce(server, "alpha")
    announce(server, "beta")
    seen: set[str] = set()
    deadline = time.monotonic() + 10
    while seen != {"alpha", "beta"} and time.monotonic() < deadline:
        found = watch.changes()
        assert found is not EVERYTHING
        seen |= found
    assert seen == {"alpha", "beta"}


def test_a_gap_in_the_notices_means_everything(watch: ChangeWatch, server: redis.Redis) -> None:
    watch.changes()
    announce(server, "alpha", skip=1)  # the notice of one revision never came
    assert changes_soon(watch) is EVERYTHING
    announce(server, "beta")
    assert changes_soon(watch) == {"beta"}, "contiguous again after the gap"


def test_a_revision_that_moved_without_a_notice_is_caught_by_the_poll(watch: ChangeWatch, server: redis.Redis) -> None:
    watch.poll_s = 0.05
    watch.changes()
    server.incr(REGISTRY_REV)  # a change nobody announced (a lost notice)
    time.sleep(0.1)
    assert changes_soon(watch) is EVERYTHING
    server.publish(REGISTRY_CHANNEL, b"not json")  # noise on the channel is ignored
    server.publish(REGISTRY_CHANNEL, json.dumps({"rev": "x", "name": 5}))
    time.sleep(0.1)
    assert watch.changes() == set()


def test_an_unreachable_registry_means_everything_then_a_pause() -> None:
    registry = Registry("redis://127.0.0.1:1/0", max_module_bytes=1 << 20)
    watch = ChangeWatch(registry, poll_s=60)
    try:
        assert watch.changes() is EVERYTHING
        assert watch.changes() == set(), "it leaves the registry alone for poll_s instead of failing every job"
    finally:
        watch.close()
        registry.close()
