"""The hardened Redis transport's shared client, against a real Redis."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection

pytestmark = pytest.mark.integration


def test_one_client_per_channel_until_its_pool_is_replaced(redis_url: str) -> None:
    with Connection(redis_url, transport="worker.queue.transport:Transport") as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.ping()
        given = object()
        with channel.conn_or_acquire(given) as passed:
            assert passed is given  # a caller's own client or pipeline is used as it is
        channel._disconnect_pools()  # what a fork or a lost connection does
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool and third.ping()


def test_publishes_and_acks_go_through_the_shared_client(redis_url: str) -> None:
    with Connection(redis_url, transport="worker.queue.transport:Transport") as conn:
        queue = conn.SimpleQueue(f"wasmq-test-transport-{uuid.uuid4().hex[:8]}")
        try:
            for i in range(5):
                queue.put({"n": i})
            got = []
            for _ in range(5):
                message = queue.get(timeout=5)
                got.append(message.payload["n"])
                message.ack()
            assert got == list(range(5))
            channel = queue.channel
            assert channel._shared_client is not None and channel._shared_client.connection_pool is channel.pool
        finally:
            queue.clear()
            queue.close()
