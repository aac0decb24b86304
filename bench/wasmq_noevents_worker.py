"""A wasmq worker with Celery's task events turned off: for `bench/compare.py`'s informational phase b0.

    python bench/wasmq_noevents_worker.py --hostname=NAME [--concurrency=2]

The same app, tasks, settings and queue (WASMQ_* variables) as `wasmq worker`, except that the worker sends
no task events (task-received/started/succeeded, sent from the worker's main process in batches), which is
what Flower listens to. It shows what those events cost per job; it is not a supported way to run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.config import get_settings
from worker.queue.app import app


def main(argv: list[str]) -> None:
    settings = get_settings()
    app.conf.worker_send_task_events = False
    app.worker_main(
        [
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={settings.concurrency}",
            f"--queues={','.join(settings.lanes)}",
            "--pool=prefork",
            *argv,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
