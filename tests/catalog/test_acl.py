"""Who may publish, against a real Redis 7 with ACL users configured as deploy/ documents: the `wasmq` user
(what workers and producers hold) reads the registry and nothing more of it; only the `publisher` user
writes it. A producer's credentials can neither publish nor yank, nor tamper with registry keys directly.
The `default` user keeps every permission: that is what lets the registry survive a restart (see
test_registry_cluster and worker/keys.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support.network import ADMIN_ACL, RedisServer
from worker.catalog import ModuleCatalog
from worker.catalog.publish import Publication, publish, yank
from worker.config import Settings
from worker.errors import PublishDenied
from worker.keys import REGISTRY_NAMES, REGISTRY_PUBLISHER_ACL, REGISTRY_READER_ACL, registry_module_key
from worker.sandbox import Sandbox

from .test_registry import GREETING, seed_study

USERS = {
    "default": ("admin-secret", ADMIN_ACL),
    "wasmq": ("producer-secret", REGISTRY_READER_ACL),
    "publisher": ("publisher-secret", REGISTRY_PUBLISHER_ACL),
}


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    found = RedisServer(["127.0.0.1"], users=USERS, appendonly=True)  # fails, never skips, without Redis 7
    yield found
    found.stop()


@pytest.fixture
def producer(server: RedisServer) -> Settings:
    return Settings(redis_url=server.url(user="wasmq"), manifests=(), cache_dir=None)


@pytest.fixture
def publisher(producer: Settings, server: RedisServer) -> Settings:
    return producer.with_(publisher_url=server.url(user="publisher"))


def test_a_publisher_publishes_and_a_producer_reads(producer: Settings, publisher: Settings) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    published = publish(publisher, GREETING, seed_study(name))
    assert published.added and published.entry.published_by.startswith("publisher (")
    assert published.artifact_shared
    catalog = ModuleCatalog.from_settings(producer)
    try:
        with Sandbox(catalog, settings=producer) as sandbox:  # reads the entry and fetches the blob
            assert sandbox.call(name, "greet", "acl").output == "Hello World, acl!"
    finally:
        catalog.close()
    entry, changed = yank(publisher, f"{name}@1.0.0")
    assert changed and entry.yanked is not None and entry.yanked.by.startswith("publisher (")


def test_a_producers_credentials_cannot_publish_or_yank(producer: Settings, publisher: Settings) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    with pytest.raises(PublishDenied, match=r"publisher's credentials \(WASMQ_PUBLISHER_URL\)") as info:
        publish(producer, GREETING, seed_study(name))
    assert "producer-secret" not in info.value.message, "no password in a message"
    publish(publisher, GREETING, seed_study(name))
    with pytest.raises(PublishDenied):
        yank(producer, f"{name}@1.0.0")
    with pytest.raises(PublishDenied):
        publish(producer, GREETING, Publication(name=name, version="2.0.0", functions=["greet:packed"]))


def test_a_producers_credentials_cannot_touch_registry_keys(producer: Settings, publisher: Settings) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    publish(publisher, GREETING, seed_study(name))
    key = registry_module_key(name)
    with redis.Redis.from_url(producer.redis_url) as r:
        assert r.hget(key, "1.0.0"), "reading is allowed"
        r.set("wasmq:any-other-key", "1")  # and writing anything else (queues, results, counters)
        attempts = [
            ("HSET", key, "1.0.0", "{}"), ("DEL", key), ("SADD", REGISTRY_NAMES, "x"), ("UNLINK", key),
            ("RENAME", "wasmq:any-other-key", key), ("COPY", "wasmq:any-other-key", key, "REPLACE"),
            ("EVAL", f"return redis.call('DEL', '{key}')", "0"), ("FLUSHALL",), ("FLUSHDB",), ("SWAPDB", "0", "1"),
            ("CONFIG", "SET", "appendonly", "no"), ("ACL", "SETUSER", "default", "~*"),
        ]  # fmt: skip
        for command in attempts:
            with pytest.raises(redis.exceptions.ResponseError, match=r"permissions|can't access"):
                r.execute_command(*command)
        assert r.hget(key, "1.0.0")
    with redis.Redis.from_url(publisher.publisher) as w:
        with pytest.raises(redis.exceptions.NoPermissionError):
            w.set("wasmq:any-other-key", "2")  # a publisher writes the registry only


def test_the_registry_survives_a_restart_with_these_users(
    server: RedisServer, producer: Settings, publisher: Settings
) -> None:
    """Redis replays the MULTI/EXEC blocks of its append-only file (our entry script among them) as the
    `default` user: were that user the restricted one, every publication would vanish on restart."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    publish(publisher, GREETING, seed_study(name))
    server.restart()
    catalog = ModuleCatalog.from_settings(producer)
    try:
        assert catalog.resolve(name).version == "1.0.0"
        assert catalog.wasm(catalog.resolve(name)) == GREETING.read_bytes()
    finally:
        catalog.close()
