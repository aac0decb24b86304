"""The Celery app and its reliability settings; no business logic.

`celery -A worker.app worker` and `wasmq worker` start the same thing. JSON only: pickle is refused both
ways. Late acks plus reject-on-worker-lost give at-least-once delivery; the visibility timeout (how long
Redis waits before redelivering an unacked message) is kept above every task's hard time limit.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from . import tasks
from .config import Settings, get_settings
from .errors import ConfigError
from .process import close_sandbox, init_sandbox

DEFAULT_TIME_LIMIT_S = 300


def make_app(settings: Settings) -> Celery:
    """A Celery app for `settings`; producers and workers build theirs the same way."""
    if DEFAULT_TIME_LIMIT_S + settings.time_limit_margin_s >= settings.visibility_timeout_s:
        raise ConfigError(
            f"visibility timeout {settings.visibility_timeout_s}s must exceed the task hard time limit "
            f"({DEFAULT_TIME_LIMIT_S}s + margin), or Redis would redeliver jobs that are still running"
        )
    app = Celery("wasmq", set_as_current=False)
    transport = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        broker_url=settings.broker,
        result_backend=settings.backend,
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
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue,
        task_time_limit=DEFAULT_TIME_LIMIT_S,
        task_soft_time_limit=DEFAULT_TIME_LIMIT_S - 10,
        result_expires=settings.result_ttl_s,
        result_extended=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    tasks.register(app)
    return app


worker_process_init.connect(init_sandbox, weak=False)
worker_process_shutdown.connect(close_sandbox, weak=False)

app = make_app(get_settings())
