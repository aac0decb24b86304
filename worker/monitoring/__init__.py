"""Watching the queue run: structured logs, Prometheus metrics, Redis-backed job counters, `wasmq status`.

- `logs`: structlog configured once per process (JSON lines in production, console output on a terminal).
- `jobs`: the Celery signal handlers that see every job end (succeeded, failed by type, retried).
- `recorder`: aggregates those outcomes in process; a background thread flushes them in batches.
- `stats`: the Redis counters behind `wasmq status` (shared by every worker and host).
- `metrics`: Prometheus metrics (prometheus_client multiprocess mode) and the worker's /metrics server.
- `control`: the remote-control command through which workers report their in-flight jobs.
- `status`: what `wasmq status` shows, gathered from Redis and the workers.

Nothing here is imported by the tasks' hot path; the handlers are connected in `worker/app.py`.
"""
