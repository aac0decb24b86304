"""Job counters in Redis, shared by every worker process on every host: what `wasmq status` reads.

Worker processes never write per job: they add up their counts in memory (`recorder.py`) and send them
here in one pipeline per flush (every `WASMQ_STATS_FLUSH_S`, and at shutdown), as HINCRBY on two hashes per
queue: the running totals (`stats_total_key`) and the current 10-second slot (`stats_slot_key`, expiring),
so any reader can sum the last five minutes. A field is a JSON list `[kind, module, function, extra]`:

| kind | extra | value |
|---|---|---|
| `j` | outcome (`succeeded` or the error type) | jobs |
| `r` | retry reason (error type) | retries |
| `d` | duration bucket index (see `duration_bucket`) | jobs |
| `t` | `""` | summed duration in microseconds |
| `f` | `""` | summed fuel |
| `n` | `""` | jobs whose fuel is known |
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from ..keys import STATS_SLOT_S, STATS_SLOT_TTL_S, STATS_WINDOW_S, stats_slot_key, stats_total_key

Field = tuple[str, str, str, str]  # (kind, module, function, extra)
BUCKET_BASE = 2 ** (1 / 8)  # duration buckets ~9 % wide: a percentile is off by at most ~4.5 %
_LOG_BASE = math.log(BUCKET_BASE)
MIN_BUCKET = -80  # 1 µs and below
SINCE_FIELD = "since"


def duration_bucket(seconds: float) -> int:
    """The bucket of a duration: bucket i holds durations in (BASE^(i-1), BASE^i] milliseconds."""
    ms = seconds * 1000.0
    if ms <= 0.001:
        return MIN_BUCKET
    return max(MIN_BUCKET, math.ceil(math.log(ms) / _LOG_BASE - 1e-9))


def bucket_ms(index: int) -> float:
    """A representative duration for a bucket: its geometric middle, in milliseconds."""
    return float(BUCKET_BASE ** (index - 0.5))


def encode(f: Field) -> str:
    return json.dumps(f, ensure_ascii=False, separators=(",", ":"))


def decode(raw: str | bytes) -> Field | None:
    try:
        kind, module, function, extra = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return str(kind), str(module), str(function), str(extra)


def push(client: redis.Redis, batches: Mapping[tuple[str, int], Counter[Field]], *, now: float | None = None) -> None:
    """Add counts to Redis in one round trip: `batches` maps (queue, slot) to field counts."""
    if not batches:
        return
    now = time.time() if now is None else now
    totals: dict[str, Counter[Field]] = {}
    pipe = client.pipeline(transaction=False)
    for (queue, slot), counts in batches.items():
        totals.setdefault(queue, Counter()).update(counts)
        key = stats_slot_key(queue, slot)
        for f, n in counts.items():
            if n:
                pipe.hincrby(key, encode(f), n)
        pipe.expire(key, STATS_SLOT_TTL_S)
    for queue, counts in totals.items():
        key = stats_total_key(queue)
        pipe.hsetnx(key, SINCE_FIELD, f"{now:.3f}")
        for f, n in counts.items():
            if n:
                pipe.hincrby(key, encode(f), n)
    pipe.execute()


@dataclass
class Counts:
    """One module function's counts over some period."""

    jobs: Counter[str] = field(default_factory=Counter)  # outcome -> jobs
    retries: Counter[str] = field(default_factory=Counter)  # reason -> retries
    durations: Counter[int] = field(default_factory=Counter)  # bucket -> jobs
    duration_us: int = 0
    fuel: int = 0
    fuel_jobs: int = 0

    def add(self, kind: str, extra: str, n: int) -> None:
        if kind == "j":
            self.jobs[extra] += n
        elif kind == "r":
            self.retries[extra] += n
        elif kind == "d":
            try:
                self.durations[int(extra)] += n
            except ValueError:
                pass
        elif kind == "t":
            self.duration_us += n
        elif kind == "f":
            self.fuel += n
        elif kind == "n":
            self.fuel_jobs += n

    def percentile_ms(self, q: float) -> float | None:
        total = sum(self.durations.values())
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index in sorted(self.durations):
            seen += self.durations[index]
            if seen >= rank:
                return round(bucket_ms(index), 3)
        return None  # pragma: no cover - the loop always reaches `total`

    def summary(self) -> dict[str, Any]:
        failed = {k: v for k, v in sorted(self.jobs.items()) if k != "succeeded" and v}
        timed = sum(self.durations.values())
        return {
            "jobs": sum(self.jobs.values()),
            "succeeded": self.jobs.get("succeeded", 0),
            "failed": sum(failed.values()),
            "failed_by_type": failed,
            "deadline_exceeded": self.jobs.get("DeadlineExceeded", 0),
            "fuel_exhausted": self.jobs.get("FuelExhausted", 0),
            "retried": sum(self.retries.values()),
            "retried_by_reason": {k: v for k, v in sorted(self.retries.items()) if v},
            "duration_ms": {
                "p50": self.percentile_ms(0.50),
                "p95": self.percentile_ms(0.95),
                "p99": self.percentile_ms(0.99),
                "mean": round(self.duration_us / timed / 1000.0, 3) if timed else None,
            },
            "mean_fuel": round(self.fuel / self.fuel_jobs) if self.fuel_jobs else None,
        }


def _fold(hashes: Iterable[Mapping[Any, Any]]) -> dict[tuple[str, str], Counts]:
    out: dict[tuple[str, str], Counts] = {}
    for h in hashes:
        for raw, value in h.items():
            f = decode(raw)
            if f is None:
                continue
            kind, module, function, extra = f
            out.setdefault((module, function), Counts()).add(kind, extra, int(value))
    return out


@dataclass
class StatsSnapshot:
    """Totals since counting began and the last five minutes, per (module, function)."""

    since: float | None
    total: dict[tuple[str, str], Counts]
    recent: dict[tuple[str, str], Counts]

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for module, function in sorted(set(self.total) | set(self.recent)):
            rows.append(
                {
                    "module": module,
                    "function": function,
                    "last_5m": self.recent.get((module, function), Counts()).summary(),
                    "since_start": self.total.get((module, function), Counts()).summary(),
                }
            )
        return {
            "since": self.since,
            "window_s": STATS_WINDOW_S,
            "modules": rows,
            "totals": {
                "last_5m": _merged(self.recent.values()).summary(),
                "since_start": _merged(self.total.values()).summary(),
            },
        }


def _merged(parts: Iterable[Counts]) -> Counts:
    out = Counts()
    for c in parts:
        out.jobs.update(c.jobs)
        out.retries.update(c.retries)
        out.durations.update(c.durations)
        out.duration_us += c.duration_us
        out.fuel += c.fuel
        out.fuel_jobs += c.fuel_jobs
    return out


def window_slots(now: float) -> list[int]:
    """The slots that make up the last `STATS_WINDOW_S` seconds, the current (partial) one included."""
    current = int(now // STATS_SLOT_S)
    return list(range(current - STATS_WINDOW_S // STATS_SLOT_S + 1, current + 1))


def read(client: redis.Redis, queue: str, *, now: float | None = None) -> StatsSnapshot:
    """Everything `wasmq status` shows about finished jobs, in one round trip."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(stats_total_key(queue))
    for slot in window_slots(now):
        pipe.hgetall(stats_slot_key(queue, slot))
    total, *slots = pipe.execute()
    raw_since = total.pop(SINCE_FIELD.encode(), None) or total.pop(SINCE_FIELD, None)
    since = float(raw_since) if raw_since is not None else None
    return StatsSnapshot(since=since, total=_fold([total]), recent=_fold(slots))
