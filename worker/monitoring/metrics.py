"""Prometheus metrics of jobs, correct under the prefork pool (prometheus_client's multiprocess mode).

Every pool process writes its counters and histograms into its own memory-mapped file in
`PROMETHEUS_MULTIPROC_DIR`; the worker's main process merges them when /metrics is scraped (`exporter.py`).
Job metrics are recorded only when that directory is set (`wasmq worker --metrics-port N` sets it before
anything imports prometheus_client); otherwise nothing here is even imported.

Processes apply their job counts in batches (`recorder.py`): a chunk of 500 items costs one increment per
distinct outcome and one per histogram bucket, not 500 observations. The writes happen under `_lock`, which
a fork waits for, so a pool process forked while its parent writes never inherits prometheus_client's
(single, global) lock in the held state.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

INF = float("inf")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LABELS = ("module", "function")
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0, 300.0, INF)  # fmt: skip
FUEL_BUCKETS = (*(float(m * 10**e) for e in range(2, 10) for m in (1, 3)), 1e10, INF)

Key = tuple[str, str]  # (module, function)


def enabled() -> bool:
    """Whether this process records Prometheus metrics (the multiprocess directory is set and exists)."""
    path = os.environ.get(MULTIPROC_ENV)
    return bool(path) and os.path.isdir(str(path))


def ensure_multiprocess_mode() -> None:
    """Make prometheus_client write new metrics to the multiprocess directory, even if it was imported first.

    prometheus_client picks its value class when first imported, from `PROMETHEUS_MULTIPROC_DIR`. The
    `celery` command imports it before the worker starts (Flower's command plugin does), before the worker
    could set that variable: pick again now that it is set.
    """
    from prometheus_client import values

    if enabled() and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def bucket_index(bounds: tuple[float, ...], value: float) -> int:
    """The bucket prometheus_client's `observe` would count `value` in (`value <= bound`)."""
    return bisect_left(bounds, value)


@dataclass
class HistogramDelta:
    counts: list[int]
    total: float = 0.0


@dataclass
class MetricDeltas:
    """Counts one process collected since its last flush."""

    jobs: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (module, function, outcome)
    retries: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (module, function, reason)
    durations: dict[Key, HistogramDelta] = field(default_factory=dict)
    fuel: dict[Key, HistogramDelta] = field(default_factory=dict)

    def observe(self, key: Key, duration_s: float | None, fuel: int | None, n: int) -> None:
        if duration_s is not None:
            h = self.durations.get(key)
            if h is None:
                h = self.durations[key] = HistogramDelta([0] * len(DURATION_BUCKETS))
            h.counts[bucket_index(DURATION_BUCKETS, duration_s)] += n
            h.total += duration_s * n
        if fuel is not None:
            h = self.fuel.get(key)
            if h is None:
                h = self.fuel[key] = HistogramDelta([0] * len(FUEL_BUCKETS))
            h.counts[bucket_index(FUEL_BUCKETS, float(fuel))] += n
            h.total += float(fuel) * n

    def __bool__(self) -> bool:
        return bool(self.jobs or self.retries or self.durations or self.fuel)


class JobMetrics:
    """The job metrics of this process (created on first use, after PROMETHEUS_MULTIPROC_DIR is set)."""

    def __init__(self) -> None:
        from prometheus_client import Counter as PromCounter
        from prometheus_client import Histogram

        ensure_multiprocess_mode()
        # registry=None: in multiprocess mode the values live in the mmap files, merged at scrape time.
        self.jobs = PromCounter(
            "wasmq_jobs", "Jobs (calls) finished, by outcome: succeeded or the error type.",
            ["module", "function", "outcome"], registry=None,
        )  # fmt: skip
        self.retries = PromCounter(
            "wasmq_job_retries", "Job retries scheduled, by reason (the error type that caused them).",
            ["module", "function", "reason"], registry=None,
        )  # fmt: skip
        self.duration = Histogram(
            "wasmq_job_duration_seconds", "Worker time per job; a batch chunk's time is shared among its items.",
            LABELS, buckets=DURATION_BUCKETS, registry=None,
        )  # fmt: skip
        self.fuel = Histogram(
            "wasmq_job_fuel_consumed", "Fuel (wasm CPU budget units) a job consumed.",
            LABELS, buckets=FUEL_BUCKETS, registry=None,
        )  # fmt: skip

    def apply(self, deltas: MetricDeltas) -> None:
        with _lock:
            for (module, function, outcome), n in deltas.jobs.items():
                self.jobs.labels(module, function, outcome).inc(n)
            for (module, function, reason), n in deltas.retries.items():
                self.retries.labels(module, function, reason).inc(n)
            for key, h in deltas.durations.items():
                _add_to_histogram(self.duration.labels(*key), h)
            for key, h in deltas.fuel.items():
                _add_to_histogram(self.fuel.labels(*key), h)


def _add_to_histogram(child: Any, delta: HistogramDelta) -> None:
    """What `observe` does for each of many values, done once per bucket (buckets are stored per bucket,
    not cumulatively, and summed at exposition)."""
    buckets = child._buckets
    for value, n in zip(buckets, delta.counts, strict=True):
        if n:
            value.inc(n)
    child._sum.inc(delta.total)


_lock = threading.Lock()
_metrics: JobMetrics | None = None
_fork_guard = False


def _acquire() -> None:
    _lock.acquire()


def _release() -> None:
    _lock.release()


def _reinit_in_child() -> None:
    global _lock
    _lock = threading.Lock()


def job_metrics() -> JobMetrics:
    global _metrics, _fork_guard
    if not _fork_guard:
        os.register_at_fork(before=_acquire, after_in_parent=_release, after_in_child=_reinit_in_child)
        _fork_guard = True
    if _metrics is None:
        _metrics = JobMetrics()
    return _metrics
