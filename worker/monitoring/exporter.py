"""The worker's /metrics endpoint, served by its main process (`wasmq worker --metrics-port N`).

On `worker_init` (main process, before the pool forks) a worker with a metrics port makes sure
`PROMETHEUS_MULTIPROC_DIR` names an empty directory (creating a temporary one if unset; `wasmq worker`
creates it before Celery starts), then serves, on every scrape:

- the job counters and histograms every pool process wrote there (`metrics.py`), merged;
- gauges read at scrape time, at no cost per job: `wasmq_worker_up`, `wasmq_jobs_in_flight` (messages this
  worker is running), `wasmq_queue_depth{queue}` and `wasmq_dead_letter_size{queue}` for the queues it
  consumes (refreshed in the background at most once a second: a scrape never waits for Redis);
- counters of the whole cluster read the same way: `wasmq_nodes_declared_dead_total{queue}` and
  `wasmq_messages_handed_back_total{queue}` (liveness, worker/queue/liveness.py; kept in Redis).

`celery -A worker.app worker` serves no metrics unless `WASMQ_METRICS_PORT` is set.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..config import Settings, get_settings
from . import nodes
from .metrics import MULTIPROC_ENV, ensure_multiprocess_mode
from .queues import dead_letter_sizes, queue_depths

log = logging.getLogger("wasmq.monitoring")
CACHE_S = 1.0
_port: int | None = None
_server: Any = None
_created_dir: tuple[int, str] | None = None  # (pid, path) of a directory this process made and removes
_ready = threading.Event()


def serve_on(port: int) -> None:
    """Serve metrics on `port` when the worker starts (the `--metrics-port` flag; overrides the setting)."""
    global _port
    _port = port


def prepare_directory() -> str:
    """Make `PROMETHEUS_MULTIPROC_DIR` name an existing directory without stale files; return it.

    Call before anything imports prometheus_client in this process and before the pool forks.
    """
    global _created_dir
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):  # counts of an earlier run of this worker
            os.remove(stale)
        return path
    path = tempfile.mkdtemp(prefix="wasmq-metrics-")
    os.environ[MULTIPROC_ENV] = path
    _created_dir = (os.getpid(), path)
    return path


class WorkerCollector:
    """Gauges of this worker, read when scraped.

    Queue depth and dead letters come from Redis, but a scrape never waits for Redis (the liveness probe
    reads /metrics and must not fail while Redis is away): it answers with the figures of the last refresh
    and, when those are older than a second, starts a refresh in the background.
    """

    def __init__(self, settings: Settings, node: str, queues: list[str]) -> None:
        self.settings = settings
        self.node = node
        self.queues = queues
        self._cached_at = -CACHE_S
        self._refreshing = False
        self._depths: dict[str, int | None] = {}
        self._dead: dict[str, int | None] = {}
        self._dead_nodes: dict[str, nodes.DeadNodes | None] = {}
        self._lock = threading.Lock()

    def _families(self) -> tuple[Any, Any, Any, Any, Any, Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        return (
            GaugeMetricFamily("wasmq_worker_up", "1 from when this worker is ready until it shuts down, else 0.",
                              labels=["worker"]),
            GaugeMetricFamily("wasmq_jobs_in_flight", "Messages this worker is running now (a batch chunk is one).",
                              labels=["worker"]),
            GaugeMetricFamily("wasmq_queue_depth", "Messages waiting in the queue, not yet taken by any worker.",
                              labels=["queue"]),
            GaugeMetricFamily("wasmq_dead_letter_size", "Entries in the queue's dead-letter queue.",
                              labels=["queue"]),
            CounterMetricFamily("wasmq_nodes_declared_dead", "Worker nodes declared dead (heartbeat expired) that "
                                "held messages of the queue or consumed it.", labels=["queue"]),
            CounterMetricFamily("wasmq_messages_handed_back", "Messages handed back to the queue for worker nodes "
                                "declared dead.", labels=["queue"]),
        )  # fmt: skip

    def describe(self) -> Iterator[Any]:
        yield from self._families()

    def refresh(self) -> None:
        """Read queue depths and dead-letter sizes from the broker and Redis."""
        try:
            depths = queue_depths(self.settings, self.queues)
            # Dead letters and their counts are kept per queue served; the batch lane's count under its queue.
            dead = dead_letter_sizes(self.settings, sorted({self.settings.home_queue(q) for q in self.queues}))
            dead_nodes = nodes.read_for(self.settings, self.queues, limit=0)
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._depths, self._dead, self._dead_nodes = depths, dead, dead_nodes
            self._cached_at = time.monotonic()

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing or time.monotonic() - self._cached_at < CACHE_S:
                return
            self._refreshing = True
        threading.Thread(target=self.refresh, name="wasmq-metrics-refresh", daemon=True).start()

    def collect(self) -> Iterator[Any]:
        from celery.worker import state as worker_state

        up, in_flight, depth, dead, declared_dead, handed_back = self._families()
        up.add_metric([self.node], 1.0 if _ready.is_set() else 0.0)
        in_flight.add_metric([self.node], float(len(worker_state.active_requests)))
        self._refresh_in_background()
        with self._lock:
            depths, deads, dead_nodes = self._depths, self._dead, self._dead_nodes
        for queue, n in depths.items():
            if n is not None:
                depth.add_metric([queue], float(n))
        for queue, n in deads.items():
            if n is not None:
                dead.add_metric([queue], float(n))
        for queue, record in dead_nodes.items():
            if record is not None:
                declared_dead.add_metric([queue], float(record.nodes))
                handed_back.add_metric([queue], float(record.messages))
        yield from (up, in_flight, depth, dead, declared_dead, handed_back)


def on_worker_init(sender: Any = None, **_: object) -> None:
    """`worker_init`: start the metrics server if this worker has a metrics port."""
    global _server
    settings = get_settings()
    port = _port if _port is not None else settings.metrics_port
    if not port or _server is not None:
        return
    path = prepare_directory()
    ensure_multiprocess_mode()
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    node = str(getattr(sender, "hostname", None) or "celery")
    consume = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    queues = sorted(getattr(consume, "consume_from", None) or {settings.queue: None})
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    registry.register(WorkerCollector(settings, node, queues))
    _server, _thread = start_http_server(port, addr=settings.metrics_host, registry=registry)


def on_worker_ready(**_: object) -> None:
    _ready.set()
    if _server is not None:  # logged here: logging is set up after `worker_init`
        host, port = _server.server_address[:2]
        log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)


def on_worker_shutdown(**_: object) -> None:
    """`worker_shutdown`: stop serving, remove a directory we made (the process's counts are flushed by its
    state, worker/queue/state.py, before this runs)."""
    global _server, _created_dir
    _ready.clear()
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
    if _created_dir is not None and _created_dir[0] == os.getpid():
        shutil.rmtree(_created_dir[1], ignore_errors=True)
        _created_dir = None
