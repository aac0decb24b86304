"""Per-process aggregation of job outcomes, flushed in batches: no Redis round trip per job.

A job's end costs a handful of in-memory counter increments under a lock. A daemon thread wakes every
`WASMQ_STATS_FLUSH_S` (1 s) and, when anything was counted, applies the counts to the Prometheus files and
sends them to Redis in one pipeline; `close()` (pool process and worker shutdown, or process exit) flushes
what is left. Counts that Redis refused are kept and sent with the next flush. A process killed outright
loses at most its last second of counts.

One recorder per process, held by the process's state (worker/queue/state.py): a pool process forked from a
parent that had one starts with a fresh, empty one (the parent's counts are the parent's to send).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, defaultdict

import redis

from ..config import Settings
from ..connections import connect
from ..keys import STATS_SLOT_S, STATS_SLOT_TTL_S
from . import metrics, stats

log = logging.getLogger("wasmq.monitoring")


class Recorder:
    """Counts job outcomes in memory; a background thread sends them to Prometheus and Redis."""

    def __init__(self, settings: Settings, *, client: redis.Redis | None = None, start: bool = True) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.prometheus = metrics.enabled()
        self._lock = threading.Lock()
        self._metrics = metrics.MetricDeltas()
        self._slots: defaultdict[tuple[str, int], Counter[stats.Field]] = defaultdict(Counter)
        self._unsent: dict[tuple[str, int], Counter[stats.Field]] = {}
        self._flush_lock = threading.Lock()
        self._client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error_log = 0.0
        if start:
            self._thread = threading.Thread(target=self._run, name="wasmq-stats-flush", daemon=True)
            self._thread.start()

    # -- the hot path: memory only --------------------------------------------------------------------

    def job(
        self, queue: str, module: str, function: str, outcome: str, *,
        duration_s: float | None, fuel: int | None, n: int = 1,
    ) -> None:  # fmt: skip
        """`n` jobs of `module.function` ended with `outcome`, each taking `duration_s` and `fuel`."""
        slot = int(time.time()) // STATS_SLOT_S
        with self._lock:
            counts = self._slots[(queue, slot)]
            counts[("j", module, function, outcome)] += n
            if duration_s is not None:
                counts[("d", module, function, str(stats.duration_bucket(duration_s)))] += n
                counts[("t", module, function, "")] += round(duration_s * 1e6) * n
            if fuel is not None:
                counts[("f", module, function, "")] += fuel * n
                counts[("n", module, function, "")] += n
            if self.prometheus:
                self._metrics.jobs[(module, function, outcome)] += n
                self._metrics.observe((module, function), duration_s, fuel, n)

    def retry(self, queue: str, module: str, function: str, reason: str, *, n: int = 1) -> None:
        """`n` jobs of `module.function` will run again because of `reason`."""
        slot = int(time.time()) // STATS_SLOT_S
        with self._lock:
            counts = self._slots[(queue, slot)]
            counts[("r", module, function, reason)] += n
            if self.prometheus:
                self._metrics.retries[(module, function, reason)] += n

    # -- flushing ------------------------------------------------------------------------------------

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self.settings.redis_url, sentinel=self.settings.sentinel, timeout_s=5)
        return self._client

    def flush(self) -> None:
        """Apply and send everything counted so far (thread-safe; one flush at a time)."""
        with self._flush_lock:
            with self._lock:
                deltas, self._metrics = self._metrics, metrics.MetricDeltas()
                slots, self._slots = self._slots, defaultdict(Counter)
            if deltas:
                metrics.job_metrics().apply(deltas)
            for key, counts in slots.items():
                self._unsent.setdefault(key, Counter()).update(counts)
            if not self._unsent:
                return
            try:
                stats.push(self._redis(), self._unsent)
            except redis.RedisError as exc:
                self._drop_expired()
                now = time.monotonic()
                if now - self._last_error_log > 60:
                    self._last_error_log = now
                    log.warning("could not send job counters to Redis (kept for the next try): %s", exc)
                return
            self._unsent = {}

    def _drop_expired(self) -> None:
        """While Redis is away, slots older than their TTL would expire at once: keep only their totals."""
        oldest = int(time.time() - STATS_SLOT_TTL_S) // STATS_SLOT_S
        for queue, slot in [k for k in self._unsent if k[1] < oldest]:
            counts = self._unsent.pop((queue, slot))
            self._unsent.setdefault((queue, oldest), Counter()).update(counts)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.stats_flush_s):
            try:
                self.flush()
            except Exception:  # never let the flusher die: the next flush retries
                log.exception("flushing job counters failed")

    def close(self) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        try:
            self.flush()
        except Exception:
            log.exception("final flush of job counters failed")
