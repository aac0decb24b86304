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
from ..monitoring.metrics import MULTIPROC_ENV
from .common import UsageError


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
        from ..app import app

        argv = [
            "worker",
            f"--loglevel={args.loglevel}",
            f"--concurrency={args.concurrency or settings.concurrency}",
            f"--queues={args.queues or settings.queue}",
            "--pool=prefork",
        ]
        if settings.task_events:
            argv.append("--task-events")
        if args.hostname:
            argv.append(f"--hostname={args.hostname}")
        app.worker_main(argv)
    return 0
