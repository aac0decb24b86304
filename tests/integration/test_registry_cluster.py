"""One cluster, not N hosts: three worker nodes, each in a network namespace of its own with no shared disk
and no module file (`WASMQ_MANIFEST=""`, a cache directory each), serve what a fourth process publishes once
to the registry. Redis runs as a deployment runs it: ACL users (the nodes and producers hold the `wasmq`
user's read-only-registry credentials, the publisher the `publisher` user's; `default` keeps every
permission) and an append-only file.

Checked: every node serves jobs and batches of a module within moments of `wasmq modules add` (the time is
printed, never asserted); `name@version` pinning; a conflicting re-publish and a producer's credentials are
refused; a module too costly to compile is refused at publish; a yank stops new jobs on every node while a
running one finishes; a node started after publishing serves it (with and without the shared compiled
artifact); a Redis restart keeps the registry. Namespaces as in test_multinode (tests/support/network.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.network import ADMIN_ACL, Network, RedisServer, network_and_redis, report
from tests.support.workers import WorkerProcess, env_for, stop_all
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.devtools.synthetic import costly_greeter, slow_greeter
from worker.errors import ModuleNotFound
from worker.keys import CALL_TASK, REGISTRY_PUBLISHER_ACL, REGISTRY_READER_ACL
from worker.outcome import Outcome
from worker.producer.client import Client, Job, Sent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GREETING = ROOT / "modules" / "greeting" / "greeting.wasm"
GREETING_C = ROOT / "modules" / "greeting_c" / "greeting_c.wasm"
NODES = 3
PUBLISHER = NODES  # the index of the publisher's namespace
USERS = {
    "default": ("admin-pw", ADMIN_ACL),
    "wasmq": ("producer-pw", REGISTRY_READER_ACL),
    "publisher": ("publisher-pw", REGISTRY_PUBLISHER_ACL),
}
SEED_STUDY = ("--function", "wasm_memory_rust_format_hello_world:seed-rust", "--function",
              "wasm_memory_c_format_hello_world:seed-c", "--function", "answer:scalar", "--function", "greet:packed",
              "--batch", "greet=greet_many")  # fmt: skip


@dataclass
class Cluster:
    net: Network
    redis: RedisServer
    settings: Settings  # the test process's, as a producer
    log_dir: Path
    tmp: Path
    nodes: list[WorkerProcess] = field(default_factory=list)

    def env(self, index: int, **more: str) -> dict[str, str]:
        """A node's environment: the producer credentials, no manifest, a cache directory of its own."""
        host = self.net.node_redis_hosts[index]
        cache = self.tmp / f"cache-{index}-{uuid.uuid4().hex[:6]}"
        return env_for(
            self.settings, WASMQ_REDIS_URL=self.redis.url(host, user="wasmq"), WASMQ_CACHE_DIR=str(cache), **more
        )

    def start_node(self, index: int, name: str, client: Client, **more: str) -> tuple[WorkerProcess, float]:
        node = WorkerProcess(self.env(index, **more), log_dir=self.log_dir, concurrency=1, name=name,
                             prefix=self.net.prefix(index))  # fmt: skip
        self.nodes.append(node)
        return node, node.start(client)

    def wasmq(self, *args: str, publisher: bool = True, **more: str) -> subprocess.CompletedProcess[str]:
        """The `wasmq` command run in the publisher's namespace (with the publisher's credentials)."""
        host = self.net.node_redis_hosts[PUBLISHER]
        env = self.env(PUBLISHER, **more)
        if publisher:
            env["WASMQ_PUBLISHER_URL"] = self.redis.url(host, user="publisher")
        return subprocess.run(
            [*self.net.prefix(PUBLISHER), sys.executable, "-m", "worker.cli", *args],
            env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    net, server = network_and_redis(NODES + 1, appendonly=True, users=USERS)
    cl: Cluster | None = None
    try:
        settings = Settings(
            redis_url=server.url(user="wasmq"), queue=f"wasmq-registry-{uuid.uuid4().hex[:8]}", manifests=(),
            cache_dir=None, chunk_size=10, registry_poll_s=0.5,
        )  # fmt: skip
        cl = Cluster(net, server, settings, tmp_path_factory.mktemp("registry-logs"), tmp_path_factory.mktemp("reg"))
        report(
            request, f"registry cluster: {NODES} nodes + a publisher in mode '{net.mode}': {net.describe(server.port)}"
        )
        with Client(settings) as client:
            for i in range(NODES):
                cl.start_node(i, f"node{i}", client)
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


def node_queue(cluster: Cluster, client: Client, node: WorkerProcess) -> str:
    """A queue only `node` consumes, to send it a job of its own."""
    queue = f"{cluster.settings.queue}-{node.node.split('@')[0]}"
    added = client.app.control.add_consumer(queue, destination=[node.node], reply=True, timeout=10)
    assert added, f"{node.node} did not take queue {queue}"
    return queue


def send(client: Client, queue: str, module: str, function: str, text: str) -> Job:
    """A job sent as it is, unchecked by this producer's catalog (a foreign producer, or a stale one)."""
    sent = Sent(CALL_TASK, [module, function, text, None], {"queue": queue, "time_limit": 60, "soft_time_limit": 50})
    return Job(client.send(sent), client, sent)


def first_served(client: Client, queue: str, module: str, function: str = "greet", timeout: float = 60) -> float:
    """Seconds until a job for `module` sent to `queue` is served (sent again until it is)."""
    started = time.monotonic()
    while True:
        outcome = send(client, queue, module, function, "first").outcome(timeout=60)
        if outcome.error is None:
            assert outcome.output == "Hello World, first!"
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"never served: {outcome.error.to_dict()}"
        time.sleep(0.02)


def served_by(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(str(o.meta.get("worker")) for o in outcomes)


def publish(cluster: Cluster, name: str, version: str, wasm: Path, *flags: str, **env: str) -> float:
    """Publish from the publisher's namespace; the seconds `wasmq modules add` took."""
    started = time.monotonic()
    done = cluster.wasmq("modules", "add", "--name", name, "--version", version, *flags, str(wasm), **env)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - started


def test_published_once_every_node_serves_it(cluster: Cluster, client: Client, request: pytest.FixtureRequest) -> None:
    queues = [node_queue(cluster, client, node) for node in cluster.nodes[:NODES]]
    took = publish(cluster, "hello", "1.0.0", GREETING, *SEED_STUDY)
    after = [first_served(client, queue, "hello") for queue in queues]
    report(request, f"registry: add took {took:.2f} s; then first job served per node after "
                    f"{', '.join(f'{t:.2f}' for t in after)} s (the nodes in turn)")  # fmt: skip
    for queue in queues:
        assert send(client, queue, "hello", "wasm_memory_c_format_hello_world", "c").outcome(60).output == (
            "Hello World, c!"
        )
        assert send(client, queue, "hello@1.0.0", "answer", "").outcome(60).output == "42"
    inputs = [f"b{i}" for i in range(600)]
    outcomes = client.map("hello", "greet", inputs, chunk_size=10, timeout=180)
    assert [o.output for o in outcomes] == [f"Hello World, {n}!" for n in inputs]
    assert set(served_by(outcomes)) == {n.node for n in cluster.nodes[:NODES]}, dict(served_by(outcomes))


def test_pinning_conflicts_and_who_may_publish(cluster: Cluster, client: Client) -> None:
    publish(cluster, "pinned", "1.0.0", GREETING, "--function", "greet:packed")
    publish(cluster, "pinned", "2.0.0", GREETING_C, "--function", "greet:packed", "--description", "in C")
    clash = cluster.wasmq("modules", "add", "--name", "pinned", "--version", "1.0.0", "--function", "greet:packed",
                          str(GREETING_C))  # fmt: skip
    assert clash.returncode == 1 and "PublishConflict" in clash.stderr and "bytes: sha256" in clash.stderr
    denied = cluster.wasmq("modules", "add", "--name", "pinned", "--version", "3.0.0", "--function", "greet:packed",
                           str(GREETING), publisher=False)  # fmt: skip
    assert denied.returncode == 1 and "PublishDenied" in denied.stderr and "producer-pw" not in denied.stderr
    not_yank = cluster.wasmq("modules", "yank", "pinned@1.0.0", publisher=False)
    assert not_yank.returncode == 1 and "PublishDenied" in not_yank.stderr
    for node in cluster.nodes[:NODES]:
        queue = node_queue(cluster, client, node)
        first_served(client, queue, "pinned@2.0.0")
        worker = [
            send(client, queue, ref, "greet", "x").outcome(60).meta["worker"] for ref in ("pinned@1.0.0", "pinned")
        ]
        assert worker == [node.node] * 2
    assert client.check("pinned", "greet", None) and client.catalog.resolve("pinned").version == "2.0.0"
    assert client.catalog.resolve("pinned@1.0.0").sha256 != client.catalog.resolve("pinned").sha256


def test_too_costly_to_compile_is_refused_at_publish(cluster: Cluster, client: Client, tmp_path: Path) -> None:
    costly = tmp_path / "costly.wasm"
    costly.write_bytes(costly_greeter(4000, 500))  # about 5 s of compiling here; stopped at 2
    done = cluster.wasmq("modules", "add", "--name", "costly", "--version", "1.0.0", "--function", "greet:packed",
                         str(costly), WASMQ_COMPILE_TIMEOUT_S="2")  # fmt: skip
    assert done.returncode == 1 and "ModuleRejected" in done.stderr and "compile_timeout_s" in done.stderr
    with pytest.raises(ModuleNotFound):
        client.catalog.resolve("costly")


def test_a_yank_stops_new_jobs_everywhere_and_running_ones_finish(
    cluster: Cluster, client: Client, tmp_path: Path
) -> None:
    slow = tmp_path / "slow.wasm"
    slow.write_bytes(slow_greeter(600_000_000))  # about 2 s a call
    limits = ("--fuel", str(10**10), "--timeout-ms", "20000")
    publish(cluster, "slow", "1.0.0", slow, "--function", "greet:packed", *limits)
    node = cluster.nodes[0]
    queue = node_queue(cluster, client, node)
    running = send(client, queue, "slow", "greet", "late")
    deadline = time.monotonic() + 60
    while running.id not in node.log_text(limit=None):  # the node has taken it (prefetch 1, concurrency 1)
        assert time.monotonic() < deadline, node.log_text()
        time.sleep(0.01)
    yanked = cluster.wasmq("modules", "yank", "slow@1.0.0", "--reason", "too slow")
    assert yanked.returncode == 0, yanked.stderr
    assert running.outcome(timeout=60).output == "Hello World, late!", "a running job finishes"
    for other in cluster.nodes[:NODES]:
        outcome = send(client, node_queue(cluster, client, other), "slow@1.0.0", "greet", "x").outcome(60)
        assert outcome.error is not None and outcome.error.type == "ModuleNotFound", outcome
        assert re.search(r"slow@1\.0\.0 was yanked at .* too slow", outcome.error.message)
    again = cluster.wasmq("modules", "add", "--name", "slow", "--version", "1.0.0", "--function", "greet:packed",
                          *limits, str(GREETING))  # fmt: skip
    assert again.returncode == 1 and "never comes back" in again.stderr


def test_a_node_started_after_publishing_serves_it(
    cluster: Cluster, client: Client, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Cold nodes (empty cache directory) for a module that takes about a second to compile: one loads the
    artifact the publisher compiled and shared, one compiles it itself."""
    heavy = tmp_path / "heavy.wasm"
    heavy.write_bytes(costly_greeter(400, 500))
    publish(cluster, "heavy", "1.0.0", heavy, "--function", "greet:packed")
    figures = {}
    for shared in ("1", "0"):
        node, ready = cluster.start_node(1, f"late{shared}", client, WASMQ_SHARED_ARTIFACTS=shared)
        served = first_served(client, node_queue(cluster, client, node), "heavy@1.0.0")
        figures[shared] = (ready, served)
        node.stop()
    report(request, "registry: a node started after publishing: ready after "
                    f"{figures['1'][0]:.2f} s, first job of a 2 MB module {figures['1'][1]:.2f} s later with the "
                    f"shared artifact, {figures['0'][1]:.2f} s compiling it itself")  # fmt: skip


def test_a_redis_restart_keeps_the_registry(cluster: Cluster, client: Client) -> None:
    queues = [node_queue(cluster, client, node) for node in cluster.nodes[:NODES]]
    publish(cluster, "durable", "1.0.0", GREETING, "--function", "greet:packed")
    publish(cluster, "durable", "1.1.0", GREETING_C, "--function", "greet:packed")
    assert cluster.wasmq("modules", "yank", "durable@1.1.0").returncode == 0
    cluster.redis.restart()  # SIGTERM, then up again on its append-only file
    fresh = ModuleCatalog.from_settings(cluster.settings)
    try:
        assert fresh.resolve("durable").version == "1.0.0"
        assert fresh.wasm(fresh.resolve("durable")) == GREETING.read_bytes()
        with pytest.raises(ModuleNotFound, match="yanked"):
            fresh.resolve("durable@1.1.0")
    finally:
        fresh.close()
    publish(cluster, "durable", "2.0.0", GREETING_C, "--function", "greet:packed")
    for queue in queues:  # (remote control is not used again: this process's pooled connection died)
        for ref in ("durable@1.0.0", "durable@2.0.0"):
            first_served(client, queue, ref, timeout=120)  # nodes reconnect, then serve old and new alike
    outcomes = client.map("durable", "greet", ["x"] * 30, chunk_size=10, timeout=120)
    assert [o.output for o in outcomes] == ["Hello World, x!"] * 30
