"""What `wasmq status` shows: queue depths, workers and their running jobs, job counts, deadlines.

Counts come from the Redis counters every worker process flushes (`stats.py`), so they cover every worker
on every host; workers and their running jobs come from one remote-control broadcast (answered by
worker/queue/control.py); nodes declared dead and the messages handed back for them from the liveness
record (`nodes.py`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from ..config import Settings
from ..connections import connect, redact
from ..errors import BrokerUnavailable
from ..keys import STATUS_COMMAND
from . import nodes, stats
from .queues import dead_letter_sizes, queue_depths

NEAR_DEADLINE = 0.8  # a running job past this share of its deadline is listed as near it
DEAD_NODES_SHOWN = 5  # the latest nodes declared dead that `wasmq status` lists


def deadline_state(job: dict[str, Any], near: float = NEAR_DEADLINE) -> str | None:
    """'past', 'near' or None for a running job."""
    elapsed, deadline = job.get("elapsed_s"), job.get("deadline_s")
    if not isinstance(elapsed, int | float) or not isinstance(deadline, int | float) or deadline <= 0:
        return None
    if elapsed >= deadline:
        return "past"
    return "near" if elapsed >= near * deadline else None


def gather(settings: Settings, app: Celery, *, timeout: float = 1.0, near: float = NEAR_DEADLINE) -> dict[str, Any]:
    """One status snapshot as a JSON-ready dict."""
    now = time.time()
    try:
        answers = ask_workers(app, timeout)
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable(redact(f"broker unreachable at {settings.broker}: {exc}")) from None
    workers = []
    queues = set(settings.lanes)  # single jobs and the batch lane, whichever workers are up
    deadlines = []
    for node, answer in sorted(answers.items()):
        if settings.queue not in (answer.get("queues") or []):
            continue  # a worker of another queue on the same broker
        queues.update(answer.get("queues") or [])
        active = list(answer.get("active") or [])
        workers.append(
            {
                "name": node,
                "pid": answer.get("pid"),
                "queues": answer.get("queues"),
                "concurrency": answer.get("concurrency"),
                "in_flight": len(active),
                "in_flight_items": sum(int(job.get("items") or 1) for job in active),
                "reserved": answer.get("reserved"),
                "active": active,
            }
        )
        for job in active:
            state = deadline_state(job, near)
            if state is not None:
                deadlines.append({**job, "worker": node, "state": state})
    try:
        with connect(settings.redis_url, sentinel=settings.sentinel, timeout_s=5) as client:
            snapshot = stats.read(client, settings.queue, now=now)
    except redis.RedisError as exc:
        raise BrokerUnavailable(redact(f"Redis unreachable at {settings.redis_url}: {exc}")) from None
    depths = queue_depths(settings, queues)
    dead_nodes = nodes.read_for(settings, [settings.queue], limit=DEAD_NODES_SHOWN).get(settings.queue)
    return {
        "queue": settings.queue,
        "generated_at": round(now, 3),
        "queues": {name: {"waiting": n} for name, n in depths.items()},
        "dead_letters": dead_letter_sizes(settings, [settings.queue]).get(settings.queue),
        "dead_nodes": dead_nodes.to_dict() if dead_nodes is not None else None,
        "workers": workers,
        "in_flight": sum(w["in_flight"] for w in workers),
        **snapshot.to_dict(),
        "deadlines": sorted(deadlines, key=lambda j: -(j["elapsed_s"] / j["deadline_s"])),
    }


# -- text --------------------------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _table(rows: list[dict[str, Any]], period: str) -> list[str]:
    head = f"  {'module.function':34} {'jobs':>7} {'ok':>7} {'failed':>7} {'retried':>7} {'deadline':>8} {'fuel':>6}"
    lines = [head + f" {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"]
    for row in rows:
        c = row[period]
        if not c["jobs"] and not c["retried"]:
            continue
        d = c["duration_ms"]
        lines.append(
            f"  {row['module'] + '.' + row['function']:34} {c['jobs']:>7} {c['succeeded']:>7} {c['failed']:>7} "
            f"{c['retried']:>7} {c['deadline_exceeded']:>8} {c['fuel_exhausted']:>6} "
            f"{_ms(d['p50']):>7} {_ms(d['p95']):>7} {_ms(d['p99']):>7}"
        )
        detail = []
        if c["failed_by_type"]:
            detail.append("failed: " + ", ".join(f"{k} {v}" for k, v in c["failed_by_type"].items()))
        if c["retried_by_reason"]:
            detail.append("retried: " + ", ".join(f"{k} {v}" for k, v in c["retried_by_reason"].items()))
        if detail:
            lines.append("      " + "; ".join(detail))
    if len(lines) == 1:
        lines = ["  (no jobs)"]
    return lines


def _job_line(job: dict[str, Any]) -> str:
    what = f"{job.get('module')}.{job.get('function')}" + (f" x{job['items']}" if job.get("items", 1) > 1 else "")
    elapsed = job.get("elapsed_s")
    deadline = job.get("deadline_s")
    timing = f"{elapsed:.2f} s" if isinstance(elapsed, int | float) else "starting"
    if isinstance(deadline, int | float):
        timing += f" of {deadline:.2f} s"
    return f"{str(job.get('id'))[:8]}  {what}  {timing}  attempt {job.get('attempt')}"


def render(status: dict[str, Any]) -> str:
    """The snapshot as text for people."""
    depth = ", ".join(
        f"{q} {v['waiting'] if v['waiting'] is not None else '?'} waiting" for q, v in status["queues"].items()
    )
    lines = [
        f"wasmq status  queue {status['queue']}  {_when(status['generated_at'])}",
        f"queues: {depth}   dead letters: {status['dead_letters']}   counting since {_when(status['since'])}",
        "",
        f"workers: {len(status['workers'])} online, {status['in_flight']} jobs in flight",
    ]
    for w in status["workers"]:
        lines.append(
            f"  {w['name']}  pid {w['pid']}  queues {','.join(w['queues'] or [])}  "
            f"busy {w['in_flight']}/{w['concurrency']}  reserved {w['reserved']}"
        )
        lines += [f"    {_job_line(job)}" for job in w["active"]]
    for period, title in (("last_5m", "last 5 minutes"), ("since_start", "since start")):
        lines += ["", f"jobs, {title}:", *_table(status["modules"], period)]
    lines += _dead_node_lines(status.get("dead_nodes"))
    if status["deadlines"]:
        lines += ["", "jobs near or past their deadline:"]
        lines += [f"  {j['state'].upper():4}  {_job_line(j)}  on {j['worker']}" for j in status["deadlines"]]
    return "\n".join(lines)


def _dead_node_lines(record: dict[str, Any] | None) -> list[str]:
    if not record or not record.get("nodes"):
        return []
    lines = ["", f"nodes declared dead: {record['nodes']}, {record['messages']} messages handed back (since start)"]
    for event in record.get("recent") or []:
        silent = ""
        if isinstance(event.get("last_beat_at"), int | float):
            silent = f"  silent {event['declared_at'] - event['last_beat_at']:.1f} s"
        where = ", ".join(str(x) for x in (f"pid {event['pid']}" if event.get("pid") else None, event.get("host")) if x)
        lines.append(
            f"  {_when(event.get('declared_at'))}  {event.get('name')}" + (f" ({where})" if where else "")
            + f"{silent}  {event.get('messages')} handed back by {str(event.get('by')).partition('#')[0]}"
        )  # fmt: skip
        if event.get("job_ids"):
            lines.append("      jobs: " + " ".join(str(i)[:8] for i in event["job_ids"][:10]))
    return lines


def ask_workers(app: Celery, timeout: float = 1.0) -> dict[str, dict[str, Any]]:
    """Every worker's answer, by node name (workers that do not answer within `timeout` are left out)."""
    replies = app.control.broadcast(STATUS_COMMAND, reply=True, timeout=timeout) or []
    out: dict[str, dict[str, Any]] = {}
    for reply in replies:
        for node, answer in reply.items():
            if isinstance(answer, dict) and "active" in answer:
                out[node] = answer
    return out
