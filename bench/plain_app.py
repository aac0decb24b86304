"""The plain-Celery baseline of `bench/compare.py`: a Python greeting task, no wasm, no wasmq.

    celery -A bench.plain_app worker --pool=prefork --concurrency=2 --queues=$BENCH_PLAIN_QUEUE

Settings are those of worker/app.py that any reliable Celery deployment would use too (JSON only, late acks,
reject on worker loss, prefetch 1, the same visibility timeout), and Celery's defaults elsewhere. wasmq's
extras (task events for Flower, extended results, the dead-lettering consumer, the hardened transport,
result polling) are not copied: what they cost is part of what the benchmark measures.

The broker/backend URL and the queue name come from BENCH_REDIS_URL and BENCH_PLAIN_QUEUE.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_PLAIN_QUEUE", "plain-bench")
VISIBILITY_TIMEOUT_S = 3_600

app = Celery("plain_bench", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=2,
    task_default_queue=QUEUE,
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    result_expires=600,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)


@app.task(name="plain.greet")
def greet(name: str) -> str:
    return f"Hello World, {name}!"
