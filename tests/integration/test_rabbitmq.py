"""Broker portability: the integration tests again, with RabbitMQ as the broker (results stay in Redis).

Every test of test_queue.py, and every test of test_cli_queue.py that uses the shared worker, is collected
here a second time and runs against this module's `client`, `worker` and `worker_env`, which send through
RabbitMQ (`WASMQ_BROKER_URL`): same tests, same expected results. Redis stays the default broker elsewhere.

RabbitMQ: WASMQ_TEST_AMQP_URL, else WASMQ_BROKER_URL when it is an amqp:// URL, else the local default
amqp://guest:guest@127.0.0.1:5672//. Without a reachable RabbitMQ every test here is skipped, saying so.
The queues and exchanges made here have names of their own and are deleted at the end.
"""

from __future__ import annotations

import inspect
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kombu import Connection

from tests.conftest import MANIFESTS
from tests.integration import test_cli_queue, test_queue
from tests.integration.test_multinode import freeze_holding_a_job, task_ids
from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.outcome import Outcome
from worker.producer.client import Client

pytestmark = pytest.mark.integration

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def amqp_url_from_env() -> str:
    given = os.environ.get("WASMQ_TEST_AMQP_URL")
    broker = os.environ.get("WASMQ_BROKER_URL", "")
    return given or (broker if broker.startswith(("amqp://", "amqps://", "pyamqp://")) else DEFAULT_AMQP_URL)


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    with Connection(url) as conn:
        return str(conn.as_uri())


def _shared_tests(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """Tests of `module` that go through the queue: they take the `client` or the `worker` fixture."""
    found = {}
    for name, obj in vars(module).items():
        if name.startswith("test_") and inspect.isfunction(obj):
            params = inspect.signature(obj).parameters
            if "client" in params or "worker" in params:
                found[name] = obj
    return found


# Collected again in this module, so that they use the RabbitMQ fixtures below.
globals().update(_shared_tests(test_queue))
globals().update(_shared_tests(test_cli_queue))


@pytest.fixture(scope="module")
def amqp_url() -> str:
    url = amqp_url_from_env()
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        pytest.skip(f"no RabbitMQ reachable at {shown(url)} ({type(exc).__name__}: {exc}); set WASMQ_TEST_AMQP_URL")
    return url


# Exchanges every Celery app on a vhost shares (remote control, replies, events).
CELERY_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


def _exchange_exists(conn: Connection, name: str) -> bool:
    channel = conn.channel()
    try:
        channel.exchange_declare(name, "direct", passive=True)
        return True
    except conn.channel_errors:
        return False
    finally:
        if channel.is_open:
            channel.close()


@pytest.fixture(scope="module")
def rabbit_queues(amqp_url: str) -> Iterator[list[str]]:
    """Names of the queues this module creates; each is deleted, with its exchange, at the end, and so are
    Celery's shared exchanges if this module created them and nothing else uses them."""
    names: list[str] = []
    with Connection(amqp_url, connect_timeout=5) as conn:
        had = {name for name in CELERY_EXCHANGES if _exchange_exists(conn, name)}
    yield names
    with Connection(amqp_url, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
            channel.exchange_delete(name)
        channel.close()
        for name in set(CELERY_EXCHANGES) - had:
            channel = conn.channel()
            try:
                channel.exchange_delete(name, if_unused=True)  # refused while another app's queue is bound
            except conn.channel_errors:
                pass
            finally:
                if channel.is_open:
                    channel.close()


def new_queue(rabbit_queues: list[str], tag: str) -> str:
    """A queue name of this module's, and its batch lane (Settings.batch_lane), both deleted at the end."""
    name = f"wasmq-test-amqp-{tag}-{uuid.uuid4().hex[:8]}"
    rabbit_queues.extend([name, f"{name}.batch"])
    return name


@pytest.fixture(scope="module")
def rabbit_settings(amqp_url: str, redis_url: str, cache_dir: Path, rabbit_queues: list[str]) -> Settings:
    return Settings(
        redis_url=redis_url,
        broker_url=amqp_url,
        queue=new_queue(rabbit_queues, "main"),
        manifests=MANIFESTS,
        cache_dir=cache_dir,
        chunk_size=100,
    )


@pytest.fixture(scope="module")
def worker_env(rabbit_settings: Settings) -> dict[str, str]:
    return env_for(rabbit_settings)


@pytest.fixture(scope="module")
def client(rabbit_settings: Settings) -> Iterator[Client]:
    with Client(rabbit_settings) as c:
        yield c


@pytest.fixture(scope="module")
def worker(
    worker_env: dict[str, str], client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(worker_env, log_dir=tmp_path_factory.mktemp("amqp-worker-log"), concurrency=2, name="amqp")
    try:
        proc.start(client)  # raises if the node never answers, leaving it running: stop it in any case
        yield proc
    finally:
        proc.stop()


def test_the_broker_really_is_rabbitmq(client: Client, worker: WorkerProcess) -> None:
    assert client.app.conf.broker_url.startswith(("amqp", "pyamqp"))
    assert "redis://" in str(client.app.conf.result_backend)  # results stay in Redis
    assert client.submit("greeting", "greet", "Rabbit").get(timeout=60) == "Hello World, Rabbit!"
    with Connection(client.settings.broker) as conn:
        assert conn.transport_cls in ("amqp", "pyamqp") or "amqp" in type(conn.transport).__module__


def ready_messages(url: str, queue: str) -> int:
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        finally:
            channel.close()


def test_node_killed_mid_batch_its_jobs_are_redelivered_at_once(
    amqp_url: str,
    rabbit_settings: Settings,
    rabbit_queues: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """SIGKILL of a whole node: RabbitMQ sees its connection close and requeues its unacknowledged
    messages immediately (with Redis they wait for the visibility timeout; see test_multinode.py)."""
    inputs = [f"rabbit-{i}" for i in range(2000)]
    chunk = 10
    messages = -(-len(inputs) // chunk)
    # A window as large as the batch: all of it is queued before any node takes from it.
    settings = rabbit_settings.with_(queue=new_queue(rabbit_queues, "sigkill"), batch_window=messages)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with Client(settings) as producer:
                result["outcomes"] = producer.map("greeting", "greet", inputs, chunk_size=chunk, timeout=120)
        except BaseException as exc:
            result["error"] = exc

    batch = threading.Thread(target=run, daemon=True)
    nodes: list[WorkerProcess] = []
    try:
        with Client(settings) as control:
            # Two nodes that start idle (on a queue of their own). Once the whole batch is queued, the victim
            # alone takes from it until it is frozen holding a job, then the survivor starts: "mid-batch"
            # does not depend on this machine's speed.
            idle = env_for(settings.with_(queue=new_queue(rabbit_queues, "idle")))
            for name in ("amqp-victim", "amqp-survivor"):
                nodes.append(WorkerProcess(idle, log_dir=tmp_path, concurrency=1, name=name))
                nodes[-1].start(control)
            victim, survivor = nodes
            batch.start()
            deadline = time.monotonic() + 60
            while not _declared_with(amqp_url, settings.batch_lane, messages):
                assert time.monotonic() < deadline and batch.is_alive(), f"the batch was not queued: {result}"
                time.sleep(0.05)
            for node in (victim, survivor):
                added = control.app.control.add_consumer(
                    settings.batch_lane, destination=[node.node], reply=True, timeout=10
                )
                assert len(added) == 1, added
                if node is victim:
                    held = freeze_holding_a_job(victim)
        while (queued := ready_messages(amqp_url, settings.batch_lane)) > messages * 4 // 5:
            assert time.monotonic() < deadline, "the survivor does not take jobs"
            time.sleep(0.002)
        victim.kill_node(signal.SIGKILL)
        batch.join(150)
        if "error" in result:
            raise result["error"]
        outcomes: list[Outcome] = result["outcomes"]
    finally:
        for node in nodes:
            node.stop()
    assert queued > 0, "the batch was over before the node was killed"
    assert [o.output for o in outcomes] == [f"Hello World, {n}!" for n in inputs]
    assert held, "the node was killed holding no job"
    survivor_done = task_ids(survivor.log_text(limit=None), "succeeded")
    assert held <= survivor_done, f"held by the killed node and never run again: {held - survivor_done}"
    request.node.user_properties.append(("redelivered_after_sigkill", len(held)))


def _declared_with(url: str, queue: str, count: int) -> bool:
    """Whether `queue` exists and holds `count` ready messages (the producer declares it on first send)."""
    try:
        return ready_messages(url, queue) >= count
    except Exception:
        return False
