"""`wasmq worker`: start a Celery worker (prefork pool) on the configured broker."""

from __future__ import annotations

import argparse

from ..config import get_settings


def run(args: argparse.Namespace) -> int:
    from ..app import app

    settings = get_settings()
    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        f"--concurrency={args.concurrency or settings.concurrency}",
        f"--queues={args.queues or settings.queue}",
        "--pool=prefork",
        "--task-events",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0
