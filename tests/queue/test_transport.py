"""The hardened Redis transport: its shared client against a real Redis, and its envelope checks."""

from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection

from tests.support.messages import ENVELOPES, Case, greet
from worker.config import Settings
from worker.queue.transport import check_envelope, envelope_limit


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.parametrize("case", ENVELOPES, ids=lambda c: c.name)
def test_envelopes_kombu_would_trip_over_are_refused_before_it_sees_them(case: Case) -> None:
    entry = case.make().redis_entry("q")
    if len(entry) > envelope_limit(Settings().max_message_bytes):
        return  # refused unread, by its size (the hostile-message suite sends it through a worker)
    try:
        envelope = json.loads(entry)
    except (ValueError, RecursionError):
        return  # refused as not JSON, likewise
    if case.name == "body not base64":
        check_envelope(envelope)  # a well-formed envelope; kombu's base64 decoding refuses it (binascii.Error)
        return
    with pytest.raises(ValueError, match=case.reason):
        check_envelope(envelope)


def test_an_envelope_as_kombu_writes_it_passes() -> None:
    check_envelope(json.loads(greet().redis_entry("q")))
