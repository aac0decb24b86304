"""The Celery app and its reliability settings; no business logic.

`celery -A worker.app worker` and `wasmq worker` start the same thing. JSON only: pickle is refused both
ways. Late acks plus reject-on-worker-lost give at-least-once delivery; the visibility timeout (how long
Redis waits before redelivering an unacked message) is kept above every task's hard time limit; liveness
(worker/queue/liveness.py) hands a dead node's messages back long before it. Redis brokers and backends may
be Redis Sentinel (`sentinel://` URLs and `WASMQ_SENTINEL_MASTER`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_failure,
    task_internal_error,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from kombu.entity import Exchange, Queue

from ..config import Settings, get_settings
from ..connections import is_redis_url, is_sentinel_url, sentinel_url
from ..monitoring import exporter, logs
from . import amqp_frames, compression, control, job_signals, state, tasks
from .dead_lettering import record_failure

# Result backends, named (no import): a producer's reads results by polling (worker/producer/results.py), a
# worker's stores them bounded and readable by any client (worker/queue/backend.py).
POLLING_BACKEND = "worker.producer.results.PollingRedisBackend"
POLLING_SENTINEL_BACKEND = "worker.producer.results.PollingSentinelBackend"
WORKER_BACKEND = "worker.queue.backend.WasmqRedisBackend"
WORKER_SENTINEL_BACKEND = "worker.queue.backend.WasmqSentinelBackend"
REDIS_TRANSPORT = "worker.queue.transport:Transport"  # our hardened Redis transport (worker/queue/transport.py)
SENTINEL_TRANSPORT = "worker.queue.transport:SentinelTransport"
SENTINEL_SOCKET_TIMEOUT_S = 10.0  # through a failover a connection may go silent rather than close


def _sentinel_options(settings: Settings, url: str) -> dict[str, Any]:
    """Transport options a `sentinel://` URL needs (kombu's and Celery's own: master name, sentinel auth)."""
    if not is_sentinel_url(url) or settings.sentinel is None:
        return {}
    return {
        "master_name": settings.sentinel.master,
        "sentinel_kwargs": settings.sentinel.sentinel_kwargs(SENTINEL_SOCKET_TIMEOUT_S),
        "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": 5.0,
    }


def _broker_transport(url: str) -> str | None:
    if is_sentinel_url(url):
        return SENTINEL_TRANSPORT
    return REDIS_TRANSPORT if is_redis_url(url) else None  # others (RabbitMQ) as their URL names them


def _result_backend(settings: Settings, producer: bool) -> str:
    url = sentinel_url(settings.backend)
    if is_sentinel_url(url):
        return f"{POLLING_SENTINEL_BACKEND if producer else WORKER_SENTINEL_BACKEND}+{url}"
    if not is_redis_url(url):
        return url
    return f"{POLLING_BACKEND if producer else WORKER_BACKEND}+{url}"


def _lane(name: str) -> Queue:
    """A queue as Celery declares one it is sent to by name: a direct exchange of its name, its name as key."""
    return Queue(name, Exchange(name, "direct"), routing_key=name)  # type: ignore[no-untyped-call]


def make_app(settings: Settings, *, producer: bool = False) -> Celery:
    """A Celery app for `settings`; a producer's reads results by polling (worker/producer/results.py)."""
    settings.check()
    compression.install(settings.max_message_bytes)  # no decompression bomb (worker/queue/compression.py)
    amqp_frames.install()  # no header table nested too deep for py-amqp (worker/queue/amqp_frames.py)
    app = Celery("wasmq", set_as_current=False)
    transport = {"visibility_timeout": settings.visibility_timeout_s}
    broker_transport = {
        **transport,
        # Messages of a worker that died are swept back to the queue once their visibility timeout has
        # passed (the backstop: liveness hands them back much sooner, worker/queue/liveness.py); kombu's
        # default sweep (every 10 s, scanning every 10th time) would add up to 100 s.
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_s // 4)),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 60,
        # A worker asks for its queues in the order it was given them (single jobs before batch chunks,
        # Settings.lanes): a single job waits at most for a chunk to finish, never behind a whole batch.
        "queue_order_strategy": "priority",
        **_sentinel_options(settings, settings.broker),
        "wasmq_max_message_bytes": settings.max_message_bytes,  # read by worker/queue/transport.py
    }
    app.conf.update(
        broker_url=sentinel_url(settings.broker),
        broker_transport=_broker_transport(settings.broker),
        result_backend=_result_backend(settings, producer),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=settings.prefetch,
        worker_concurrency=settings.concurrency,
        broker_transport_options=broker_transport,
        result_backend_transport_options={**transport, **_sentinel_options(settings, settings.backend)},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out a broker restart instead of exiting
        result_backend_always_retry=True,  # a result is stored once the backend is back, not dropped
        result_backend_max_retries=60,
        task_publish_retry_policy={"max_retries": 60, "interval_start": 0, "interval_step": 0.5, "interval_max": 2},
        worker_consumer="worker.queue.consumer:WasmqConsumer",
        task_default_queue=settings.queue,
        # Both lanes, single jobs first: what `celery -A worker.app worker` consumes without -Q, in this order.
        task_queues=[_lane(name) for name in settings.lanes],
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(1, settings.task_time_limit_s - 5),
        result_expires=settings.result_ttl_s,
        result_extended=True,
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        wasmq_settings=settings,  # what the consumer and the result backend of this app go by
    )
    tasks.register(app)
    return app


# The process's state (worker/queue/state.py): built after fork, flushed and closed at shutdown.
worker_init.connect(state.on_worker_init, weak=False)
worker_process_init.connect(state.on_process_init, weak=False)
worker_process_shutdown.connect(state.on_shutdown, weak=False)
worker_shutdown.connect(state.on_shutdown, weak=False)  # before the exporter stops (connected below)
task_failure.connect(record_failure, weak=False)
task_internal_error.connect(record_failure, weak=False)  # e.g. kwargs that are not a mapping

# Monitoring: structured logs, job counters and metrics (worker/queue/job_signals.py), the /metrics server.
setup_logging.connect(logs.on_setup_logging, weak=False)  # Celery leaves logging to structlog
worker_init.connect(exporter.on_worker_init, weak=False)
worker_ready.connect(exporter.on_worker_ready, weak=False)
worker_shutdown.connect(exporter.on_worker_shutdown, weak=False)
task_prerun.connect(job_signals.on_prerun, weak=False)
task_postrun.connect(job_signals.on_postrun, weak=False)
task_retry.connect(job_signals.on_retry, weak=False)  # main process: a lost pool process's job sent again
task_failure.connect(job_signals.on_failure, weak=False)  # main process: lost for good, or hard time limit
task_internal_error.connect(job_signals.on_internal_error, weak=False)
assert control.wasmq_status  # importing control registers the `wasmq status` remote-control command

app = make_app(get_settings())
# `celery -A worker.app` (a worker, Flower) loads this app; tools that look results up through Celery's default
# app (Flower's task-result API, `AsyncResult(id)` without an app) then find our result backend.
app.set_default()
