"""What monitoring adds to each job in a pool process: the signal handlers' own time, measured in process.

    .venv/bin/python bench/monitoring_overhead.py [--jobs 20000]

Runs `task_prerun` + `task_postrun` handlers (worker/monitoring/jobs.py) exactly as Celery calls them, for
single-call results and for 500-item chunk results, with logging configured as in production (JSON lines,
written to /dev/null) and Prometheus multiprocess mode on; the background flush (every second) runs as it
would. Also times one stdlib log record through the JSON formatter against Celery's plain formatter, since
Celery logs two lines per job ("received", "succeeded") that now go through structlog's formatter.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="wasmq-bench-metrics-")
    os.environ.setdefault("WASMQ_REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["WASMQ_QUEUE"] = f"bench-monitoring-{os.getpid()}"

    from worker.monitoring import logs, recorder
    from worker.queue import job_signals as jobs

    sink = open(os.devnull, "w")
    logs.configure_logging("json", logging.INFO, stream=sink)
    request = SimpleNamespace(hostname="bench@host", retries=0, delivery_info={"routing_key": "bench"})
    task = SimpleNamespace(name="wasmq.call", request=request)
    chunk_task = SimpleNamespace(name="wasmq.call_many", request=request)
    usage = {"fuel": 336, "wall_ms": 0.05, "memory_bytes": 65536}
    single = {"output": "Hello World, A!", "usage": usage, "module": "greeting", "function": "greet", "pid": 1}
    chunk = {"results": [{"ok": True, "output": "x", "usage": usage} for _ in range(500)], "pid": 1}

    def run(n: int, t: SimpleNamespace, args: list[object], retval: dict[str, object]) -> float:
        started = time.perf_counter()
        for i in range(n):
            tid = f"id-{i}"
            jobs.on_prerun(task_id=tid, task=t)
            jobs.on_postrun(task_id=tid, task=t, args=args, retval=retval, state="SUCCESS")
        return (time.perf_counter() - started) / n * 1e6

    run(200, task, ["greeting", "greet", "A", None], single)  # warm up: catalog, label cache, metrics
    per_single = run(args.jobs, task, ["greeting", "greet", "A", None], single)
    per_chunk = run(max(50, args.jobs // 100), chunk_task, ["greeting", "greet", ["A"] * 500, None], chunk)
    recorder.close_recorder()

    celery_log = logging.getLogger("celery.app.trace")
    n = args.jobs
    started = time.perf_counter()
    for i in range(n):
        celery_log.info("Task %s[%s] succeeded in %ss: %r", "wasmq.call", i, 0.001, single)
    json_line = (time.perf_counter() - started) / n * 1e6
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"))
    plain = logging.getLogger("bench.plain")
    plain.propagate = False
    plain.addHandler(handler)
    plain.setLevel(logging.INFO)
    started = time.perf_counter()
    for i in range(n):
        plain.info("Task %s[%s] succeeded in %ss: %r", "wasmq.call", i, 0.001, single)
    plain_line = (time.perf_counter() - started) / n * 1e6

    _forget(os.environ["WASMQ_QUEUE"])
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    print(f"handlers per single job (prerun + postrun, counters, one JSON log line): {per_single:7.1f} us")
    print(f"handlers per 500-item chunk message:                                     {per_chunk:7.1f} us")
    print(f"  per chunk item:                                                        {per_chunk / 500:7.2f} us")
    print(f"a Celery log line through the JSON formatter:                            {json_line:7.1f} us")
    print(f"the same line through Celery's plain formatter:                          {plain_line:7.1f} us")


def _forget(queue: str) -> None:
    """Remove the counters this run flushed to Redis (their 10-second slots expire by themselves)."""
    import redis

    from worker.config import get_settings
    from worker.keys import stats_total_key

    try:
        with redis.Redis.from_url(get_settings().redis_url, socket_timeout=2) as client:
            client.delete(stats_total_key(queue))
    except redis.RedisError:
        pass


if __name__ == "__main__":
    main()
