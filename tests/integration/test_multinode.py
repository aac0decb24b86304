"""Many hosts on one machine: one Redis, three worker nodes with distinct node names.

Where the machine allows it every node runs in a network namespace of its own (tests/support/network.py);
otherwise the nodes are plain processes on 127.0.0.1. The mode is printed in the test session's output and
stored as the tests' `network_mode` property; WASMQ_TEST_NETNS=0 forces plain processes. Everything started
here (namespaces, veths, Redis, workers) is removed by pid or by name at teardown.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.conftest import MANIFESTS
from tests.support.network import Network, RedisServer, network_and_redis, report
from tests.support.workers import WorkerProcess, env_for, stop_all
from worker.config import Settings
from worker.outcome import Outcome
from worker.producer.client import Client

pytestmark = pytest.mark.integration

NODES = 3
# A short visibility timeout, so that the messages a SIGKILLed node held come back within the test.
# Every hard time limit must stay below it: jobs here ask for a 200 ms deadline (chunk of 10: 8 s limit).
VISIBILITY_S = 20
SHORT_LIMITS = {
    "visibility_timeout_s": VISIBILITY_S,
    "task_time_limit_s": 10,
    "time_limit_margin_s": 5.0,
    "retry_backoff_max_s": 5.0,
}
TIMEOUT_MS = 200
CHUNK = 10


class Node(WorkerProcess):
    """A `wasmq worker` (concurrency 1), in a network namespace when `netns` is given."""

    def __init__(self, env: dict[str, str], *, log_dir: Path, name: str, netns: str | None) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        super().__init__(env, log_dir=log_dir, concurrency=1, name=name, prefix=prefix)
        self.netns = netns


@dataclass
class Cluster:
    net: Network
    redis: RedisServer
    settings: Settings
    envs: list[dict[str, str]]
    log_dir: Path
    nodes: list[Node] = field(default_factory=list)

    def add_node(self, index: int, name: str) -> Node:
        node = Node(self.envs[index], log_dir=self.log_dir, name=name, netns=self.net.namespaces[index])
        self.nodes.append(node)
        return node


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    net, server = network_and_redis(NODES)
    cl: Cluster | None = None
    try:
        queue = f"wasmq-multinode-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            redis_url=server.url(),
            queue=queue,
            manifests=MANIFESTS,
            cache_dir=cache_dir,
            chunk_size=CHUNK,
            **SHORT_LIMITS,  # type: ignore[arg-type]
        )
        envs = [env_for(settings, WASMQ_REDIS_URL=server.url(host)) for host in net.node_redis_hosts]
        cl = Cluster(net, server, settings, envs, tmp_path_factory.mktemp("multinode-logs"))
        report(request, f"multinode: {NODES} worker nodes in mode '{net.mode}': {net.describe(server.port)}")
        with Client(settings) as client:
            for i in range(NODES):
                cl.add_node(i, f"node{i}").launch()
            for node in cl.nodes:
                node.wait_ready(client)
        yield cl
    finally:
        if cl is not None:
            stop_all(cl.nodes)
        server.stop()
        net.teardown()


@pytest.fixture
def client(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Client]:
    request.node.user_properties.append(("network_mode", cluster.net.mode))
    with Client(cluster.settings) as c:
        yield c


def names(n: int, tag: str) -> list[str]:
    return [f"{tag}-{i}" for i in range(n)]


def check_greeted(outcomes: list[Outcome], inputs: list[str]) -> None:
    assert len(outcomes) == len(inputs)
    wrong = [(i, o) for i, (o, n) in enumerate(zip(outcomes, inputs, strict=True)) if o.output != f"Hello World, {n}!"]
    assert not wrong, f"{len(wrong)} of {len(inputs)} wrong or missing, first: {wrong[:3]}"


def served_by(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(str(o.meta.get("worker")) for o in outcomes)


def test_every_node_serves_jobs(cluster: Cluster, client: Client) -> None:
    inputs = names(3000, "batch")
    outcomes = client.map("greeting", "greet", inputs, chunk_size=CHUNK, timeout=120, timeout_ms=TIMEOUT_MS)
    check_greeted(outcomes, inputs)
    served = served_by(outcomes)
    running = {n.node for n in cluster.nodes[:NODES] if n.alive()}
    assert len(running) == NODES, "run this test first: a later one stops a node"
    assert set(served) == running, f"mode {cluster.net.mode}: jobs per node {dict(served)}"


class BacklogBatch:
    """A batch sent to a queue of its own that no node consumes yet, then released to every running node
    (`add_consumer`): the whole batch is queued before any node works on it, so "mid-batch" does not depend
    on how fast this machine is."""

    def __init__(self, cluster: Cluster, control: Client, inputs: list[str]) -> None:
        self.cluster, self.control, self.inputs = cluster, control, inputs
        self.messages = -(-len(inputs) // CHUNK)
        # A window as large as the batch: all of it is queued before any node takes from it.
        self.settings = cluster.settings.with_(queue=f"{cluster.settings.queue}-batch-{uuid.uuid4().hex[:6]}",
                                               batch_window=self.messages)  # fmt: skip
        self.queue = self.settings.batch_lane  # where its chunks wait
        self.outcomes: list[Outcome] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with Client(self.settings) as producer:
                self.outcomes = producer.map(
                    "greeting", "greet", self.inputs, chunk_size=CHUNK, timeout=180, timeout_ms=TIMEOUT_MS
                )
        except BaseException as exc:
            self.error = exc

    def env(self, index: int) -> dict[str, str]:
        """The environment of a node that consumes this batch's queue."""
        return {**self.cluster.envs[index], "WASMQ_QUEUE": self.settings.queue}

    def start(self) -> None:
        """Send the whole batch; return once all of it is queued (no node takes from this queue yet)."""
        self.thread.start()
        deadline = time.monotonic() + 60
        with redis.Redis.from_url(self.settings.redis_url) as r:
            while int(r.llen(self.queue)) < self.messages:
                assert time.monotonic() < deadline and self.thread.is_alive(), "the batch was not queued"
                time.sleep(0.05)

    def release(self, nodes: list[WorkerProcess]) -> None:
        """Let `nodes` take from the batch's queue."""
        names = [n.node for n in nodes]
        added = self.control.app.control.add_consumer(self.queue, destination=names, reply=True, timeout=10)
        assert len(added) == len(names), added

    def queued(self) -> int:
        with redis.Redis.from_url(self.settings.redis_url) as r:
            return int(r.llen(self.queue))

    def start_with(self, victim: WorkerProcess, others: list[WorkerProcess]) -> int:
        """Queue the batch, let `victim` take a job first (so that it surely has work of this batch), then
        the `others`; return once a fifth of the batch has left the queue: the queue length then (about
        four fifths of it: the batch is in full swing)."""
        self.start()
        self.release([victim])
        deadline = time.monotonic() + 60
        while not task_ids(victim.log_text(limit=None), "received"):
            assert time.monotonic() < deadline, f"{victim.node} takes no job:\n{victim.log_text()}"
            time.sleep(0.01)
        self.release(others)
        while (queued := self.queued()) > self.messages * 4 // 5:
            assert time.monotonic() < deadline, "the nodes do not take jobs"
            time.sleep(0.002)
        return queued

    def join(self) -> list[Outcome]:
        self.thread.join(240)
        if self.error is not None:
            raise self.error
        assert self.outcomes is not None, "the batch did not finish"
        return self.outcomes


def freeze_holding_a_job(node: WorkerProcess, timeout: float = 60.0) -> set[str]:
    """SIGSTOP the node's whole process group at a moment it holds a message (received, not finished),
    so that the SIGKILL that follows is sure to leave an unacknowledged message behind. Returns their ids."""
    assert node.proc is not None
    deadline = time.monotonic() + timeout
    while True:
        os.killpg(node.proc.pid, signal.SIGSTOP)
        log = node.log_text(limit=None)
        held = task_ids(log, "received") - task_ids(log, "succeeded")
        if held:
            return held
        os.killpg(node.proc.pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"the node never held a job; its log ends:\n{log[-3000:]}"
        time.sleep(0.003)


def task_ids(log: str, event: str) -> set[str]:
    return set(re.findall(rf"Task wasmq\.call_many\[([0-9a-f-]+)\] {event}", log))


def test_node_stopped_mid_batch_with_sigterm_loses_no_job(cluster: Cluster, client: Client) -> None:
    running = [n for n in cluster.nodes if n.alive()]
    victim, others = running[0], running[1:]
    inputs = names(3000, "sigterm")
    batch = BacklogBatch(cluster, client, inputs)
    queued = batch.start_with(victim, others)
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGTERM)  # warm shutdown: finish the running job, hand back the rest
    outcomes = batch.join()
    assert queued > 0, "the batch was over before the node was stopped"
    assert victim.proc.wait(timeout=60) == 0, victim.log_text()
    check_greeted(outcomes, inputs)
    served = served_by(outcomes)
    survivors = {n.node for n in cluster.nodes if n.alive()}
    assert survivors and survivors <= set(served), f"jobs per node {dict(served)}"
    assert served[victim.node] > 0, "the stopped node had served nothing of this batch"
    assert "Warm shutdown" in victim.log_text(limit=None)


def test_node_killed_mid_batch_its_jobs_come_back(
    cluster: Cluster, client: Client, request: pytest.FixtureRequest
) -> None:
    """SIGKILL of a whole node (main process and pool): its unacknowledged messages stay in Redis and are
    delivered again: handed back by a running node once the dead one's heartbeat has expired (liveness,
    `WASMQ_NODE_TIMEOUT_S`), at the latest once the visibility timeout has passed, to the others or to a
    replacement node started then (as an orchestrator restarts a dead one)."""
    inputs = names(3000, "sigkill")
    others = [n for n in cluster.nodes if n.alive()]
    victim = cluster.add_node(0, "victim")
    victim.start(client)
    batch = BacklogBatch(cluster, client, inputs)
    replacement = Node(batch.env(1), log_dir=cluster.log_dir, name="replacement", netns=cluster.net.namespaces[1])
    cluster.nodes.append(replacement)
    # The victim alone takes from the batch until it is frozen holding a job; then the others start.
    batch.start()
    batch.release([victim])
    held = freeze_holding_a_job(victim)
    batch.release(others)
    deadline = time.monotonic() + 60
    while (queued := batch.queued()) > batch.messages * 4 // 5:
        assert time.monotonic() < deadline, "the nodes do not take jobs"
        time.sleep(0.002)
    victim.kill_node(signal.SIGKILL)
    timer = threading.Timer(VISIBILITY_S + 2, replacement.launch)
    timer.start()
    try:
        outcomes = batch.join()
    finally:
        timer.cancel()
        timer.join()
    assert queued > 0, "the batch was over before the node was killed"
    assert not victim.alive()
    check_greeted(outcomes, inputs)
    logs = {n.node: n.log_text(limit=None) for n in cluster.nodes}
    assert held == task_ids(logs[victim.node], "received") - task_ids(logs[victim.node], "succeeded")
    others = set().union(*(task_ids(text, "succeeded") for node, text in logs.items() if node != victim.node))
    # Every message the node died holding was run again elsewhere (its result is in `outcomes` too).
    assert held <= others, f"held by the killed node and never run again: {held - others}"
    # At least 1, by construction (freeze_holding_a_job).
    request.node.user_properties.append(("redelivered_after_sigkill", len(held)))
