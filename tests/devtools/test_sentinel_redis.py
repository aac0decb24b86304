"""The Sentinel launcher (worker/devtools/sentinel_redis.py) and what runs on it: a master, a replica and
three sentinels, all real redis-server processes; `connect()` and our Sentinel transport find the master,
and find the new one after a failover."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
import redis
from kombu import Connection

from worker.connections import SentinelOptions, connect, sentinel_url
from worker.devtools.sentinel_redis import SentinelCluster

pytestmark = pytest.mark.integration


def test_clients_and_the_transport_follow_the_master_through_a_failover() -> None:
    with SentinelCluster() as cluster:
        options = SentinelOptions(master=cluster.master_name)
        queue = f"wasmq-test-sentinel-{uuid.uuid4().hex[:8]}"
        transport_options = {"master_name": cluster.master_name, "wasmq_node": "node-s"}
        client = connect(cluster.url, sentinel=options, timeout_s=2)
        try:
            client.set("before", "1")
            with Connection(sentinel_url(cluster.url), transport="worker.queue.transport:SentinelTransport",
                            transport_options=transport_options) as conn:  # fmt: skip
                simple = conn.SimpleQueue(queue)
                simple.put({"n": 1})
                message = simple.get(timeout=5)
                assert message.payload == {"n": 1}
                assert client.hget("wasmq:unacked:holders", message.delivery_tag) == b"node-s"
                message.ack()
                simple.put({"n": 2})
                simple.close()
            old = cluster.kill_master(signal.SIGKILL)
            new = cluster.wait_for_failover(old)
            assert new != old and cluster.master_address() == new
            for attempt in range(50):  # the client reconnects on its next command, asking the sentinels
                try:
                    assert client.get("before") == b"1"
                    break
                except redis.ConnectionError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            assert client.connection_pool.get_master_address() == new
            with Connection(sentinel_url(cluster.url), transport="worker.queue.transport:SentinelTransport",
                            transport_options=transport_options) as conn:  # fmt: skip
                simple = conn.SimpleQueue(queue)
                assert simple.get(timeout=5).payload == {"n": 2}  # replicated before the crash
                simple.close()
        finally:
            client.close()
