"""`wasmq worker`: start a Celery worker (prefork pool) on the configured broker.

With `--metrics-port N` (or `WASMQ_METRICS_PORT`), the worker's main process serves Prometheus metrics at
http://HOST:N/metrics. prometheus_client's multiprocess mode needs `PROMETHEUS_MULTIPROC_DIR` in the
environment before any process of the worker imports it: this command creates a temporary directory for
that, passes it down to the pool processes through the environment, and removes it when the worker exits.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import ExitStack

from ..config import get_settings
from ..errors import UsageError
from ..monitoring.metrics import MULTIPROC_ENV
from .common import SubParsers


def add_parser(sub: SubParsers) -> None:
    worker = sub.add_parser("worker", help="start a worker (Celery prefork pool)")
    worker.add_argument("--concurrency", type=int, help="worker processes (default WASMQ_CONCURRENCY)")
    worker.add_argument(
        "--queues", help="comma-separated queues, preferred in this order (default: WASMQ_QUEUE, then its batch lane)"
    )
    worker.add_argument("--hostname", help="node name, e.g. w1@%%h")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics at /metrics on this port (WASMQ_METRICS_PORT)"
    )


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--metrics-port must be a TCP port (1-65535), not {port}")
    with ExitStack() as stack:
        if port:
            if not os.environ.get(MULTIPROC_ENV):
                os.environ[MULTIPROC_ENV] = stack.enter_context(tempfile.TemporaryDirectory(prefix="wasmq-metrics-"))
                stack.callback(os.environ.pop, MULTIPROC_ENV, None)
            from ..monitoring import exporter

            exporter.serve_on(port)
        from ..queue.app import app

        argv = [
            "worker",
            f"--loglevel={args.loglevel}",
            f"--concurrency={args.concurrency or settings.concurrency}",
            f"--queues={args.queues or ','.join(settings.lanes)}",
            "--pool=prefork",
        ]
        if settings.task_events:
            argv.append("--task-events")
        if args.hostname:
            argv.append(f"--hostname={args.hostname}")
        app.worker_main(argv)
    return 0
