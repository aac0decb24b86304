"""The Celery signal handlers that see every job end, and what each one records and logs.

Where each outcome is seen (connected in `worker/queue/app.py`):

- `task_prerun` / `task_postrun` (pool process): every run of `wasmq.call` / `wasmq.call_many`. A success
  or a failure is a finished job; state RETRY is a retry (the job runs again). A chunk counts each item.
- `task_retry` (worker's main process): a job whose pool process died is sent again (`WorkerLost`).
- `task_failure` (worker's main process): a job lost with its pool process for the last time
  (`WorkerLost`), or killed by the hard time limit (`DeadlineExceeded`). Failures raised in the pool
  process also fire it there; those are counted by `task_postrun` instead. Celery 5.7 fires it twice for
  one hard time limit (once from the pool's result, once from its timeout handler): the second is not counted.
- `task_internal_error` (pool process): a message Celery could not call the task with.

Per job: a few dictionary updates (worker/monitoring/recorder.py) and one log line. Module and function are
read from the arguments in order or by name (worker/queue/contract.py). Labels are checked against the module
catalog, so a foreign producer cannot create unbounded label values ("<unknown>").
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import structlog
from celery.exceptions import TimeLimitExceeded, WorkerLostError

from ..bounds import short_repr
from ..errors import WasmqError
from ..keys import CALL_MANY_TASK, CALL_TASK
from ..monitoring.recorder import Recorder
from ..outcome import to_error
from .contract import items as items_of
from .contract import parts
from .state import current

log = structlog.get_logger("wasmq.jobs")
UNKNOWN = "<unknown>"
SUCCEEDED = "succeeded"
TASKS = {CALL_TASK: "call", CALL_MANY_TASK: "call_many"}
MAX_KNOWN_LABELS = 10_000


def labels(module: Any, function: Any) -> tuple[str, str]:
    """Metric labels for a job: the names as sent if the catalog knows them, else `<unknown>`."""
    if not isinstance(module, str) or not isinstance(function, str):
        return UNKNOWN, UNKNOWN
    state = current()
    if (module, function) in state.known_labels:
        return module, function
    try:
        spec = state.catalog.resolve(module)
    except WasmqError:
        return UNKNOWN, UNKNOWN
    if function not in spec.functions:
        return module, UNKNOWN
    if len(state.known_labels) < MAX_KNOWN_LABELS:
        state.known_labels.add((module, function))
    return module, function


def _call_args(name: Any, args: Any, kwargs: Any) -> tuple[Any, Any, int]:
    """(module, function, how many calls) from a task's arguments, whatever they are."""
    module, function, payload, _ = parts(name, args, kwargs)
    return module, function, items_of(name, payload)


def _usage(entry: Any) -> tuple[float | None, int | None]:
    usage = entry.get("usage") if isinstance(entry, dict) else None
    if not isinstance(usage, dict):
        return None, None
    wall, fuel = usage.get("wall_ms"), usage.get("fuel")
    return (
        float(wall) if isinstance(wall, int | float) else None,
        int(fuel) if isinstance(fuel, int) else None,
    )


def _short(value: Any) -> Any:
    """A module or function name for a log line: a foreign producer's junk is cut short."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    return value if value is None else short_repr(value, 200)


def reason_of(exc: BaseException | None) -> str:
    """The retry reason: our error type, `WorkerLost`, or the exception's class (connection errors)."""
    if isinstance(exc, WasmqError):
        return exc.type
    if isinstance(exc, WorkerLostError):
        return "WorkerLost"
    return type(exc).__name__ if exc is not None else "Retry"


def _context(task: Any) -> dict[str, Any]:
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    return {
        "worker": getattr(request, "hostname", None) or current().node,
        "attempt": int(getattr(request, "retries", 0) or 0) + 1,
        "queue": current().settings.home_queue(delivery.get("routing_key")),
        "redelivered": bool(delivery.get("redelivered")),
    }


# -- pool process ----------------------------------------------------------------------------------


def on_prerun(task_id: str | None = None, **_: object) -> None:
    if task_id is not None:
        current().started[task_id] = time.perf_counter()


def on_postrun(
    *, task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, retval: Any = None,
    state: str | None = None, **_: object,
) -> None:  # fmt: skip
    started = current().started.pop(task_id, None) if task_id is not None else None
    name = getattr(task, "name", None)
    if name not in TASKS:
        return
    elapsed = time.perf_counter() - started if started is not None else None
    try:
        _finished(task_id, name, task, args=args, kwargs=kwargs, retval=retval, state=state, elapsed=elapsed)
    except Exception:  # monitoring must never break a job
        log.exception("recording a job failed", job_id=task_id)


def _finished(
    task_id: Any, name: str, task: Any, *, args: Any, kwargs: Any, retval: Any, state: str | None,
    elapsed: float | None,
) -> None:  # fmt: skip
    module, function, items = _call_args(name, args, kwargs)
    ctx = _context(task)
    lm, lf = labels(module, function)
    fields: dict[str, Any] = {
        "job_id": task_id, "task": TASKS[name], "module": _short(module), "function": _short(function),
        "attempt": ctx["attempt"], "worker": ctx["worker"], "queue": ctx["queue"],
        "duration_ms": round(elapsed * 1000.0, 3) if elapsed is not None else None,
    }  # fmt: skip
    if name == CALL_MANY_TASK:
        fields["items"] = items
    rec = current().recorder
    if state == "RETRY":
        cause = getattr(retval, "exc", None)
        reason = reason_of(cause)
        _, fuel = _usage(getattr(cause, "details", None))
        rec.retry(ctx["queue"], lm, lf, reason, n=items)
        log.warning("job retry", outcome="retry", reason=reason, fuel=fuel, countdown_s=_countdown(retval), **fields)
        return
    if state == "SUCCESS":
        retval = retval if isinstance(retval, dict) else {}
        if ctx["redelivered"] and retval.get("pid") not in (None, os.getpid()):
            log.info("job already done", outcome="duplicate", **fields)  # answered from the stored result
            return
        rows = _chunk_rows(retval) if name == CALL_MANY_TASK else None
        if rows is not None:
            _chunk(rec, ctx["queue"], lm, lf, rows=rows, elapsed=elapsed, fields=fields)
            return
        _, fuel = _usage(retval)
        rec.job(ctx["queue"], lm, lf, SUCCEEDED, duration_s=elapsed, fuel=fuel)
        log.info("job finished", outcome=SUCCEEDED, fuel=fuel, **fields)
        return
    error = to_error(retval)
    _, fuel = _usage(error.details)
    share = elapsed / items if elapsed is not None else None
    rec.job(ctx["queue"], lm, lf, error.type, duration_s=share, fuel=fuel if items == 1 else None, n=items)
    log.warning("job finished", outcome=error.type, fuel=fuel, error=error.message[:300], **fields)


def _countdown(retval: Any) -> float | None:
    when = getattr(retval, "when", None)
    return round(float(when), 3) if isinstance(when, int | float) else None


Row = tuple[str, float | None, int | None]  # an item's outcome, wall time (ms) and fuel, where known
Rows = list[tuple[Row, int]]  # a chunk's items in order, as (row, how many items in a row share it)


def _chunk_rows(retval: dict[str, Any]) -> Rows | None:
    """The items of a chunk's result, in either shape (worker/chunk_result.py); None if neither. The lean
    shape's successes between two errors are one entry: O(errors), not O(items)."""
    entries = retval.get("results")
    if isinstance(entries, list):
        rows: Rows = []
        for entry in entries:
            ok = isinstance(entry, dict) and entry.get("ok") is True
            error = entry.get("error") if isinstance(entry, dict) else None
            outcome = SUCCEEDED if ok else _error_type(error)
            rows.append(((outcome, *_usage(entry if ok else error)), 1))
        return rows
    outputs, errors = retval.get("outputs"), retval.get("errors")
    if not isinstance(outputs, list) or not isinstance(errors, list):
        return None
    failed = {p[0]: p[1] for p in errors if isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)}
    _, fuel = _usage(retval)  # the chunk's total: shared evenly by the items that succeeded
    share = fuel // max(1, len(outputs) - len(failed)) if fuel is not None else None
    succeeded: Row = (SUCCEEDED, None, share)
    lean: Rows = []
    done = 0  # the items before this index are in `lean`
    for index in sorted(i for i in failed if 0 <= i < len(outputs)):
        if index > done:
            lean.append((succeeded, index - done))
        lean.append(((_error_type(failed[index]), *_usage(failed[index])), 1))
        done = index + 1
    if len(outputs) > done:
        lean.append((succeeded, len(outputs) - done))
    return lean


def _error_type(error: Any) -> str:
    return str(error.get("type") or "JobFailed") if isinstance(error, dict) else "JobFailed"


def _chunk(
    rec: Recorder, queue: str, module: str, function: str, *, rows: Rows, elapsed: float | None,
    fields: dict[str, Any],
) -> None:  # fmt: skip
    """Each item of a chunk is a job: its outcome, its fuel, and its share of the chunk's time (by the
    item's own wall time where known, so that a slow item shows as slow)."""
    items = sum(n for _, n in rows)
    if not items:
        log.info("job finished", outcome=SUCCEEDED, outcomes={}, fuel=0, **fields)
        return
    total_weight = sum((wall or 0.0) * n for (_, wall, _), n in rows)
    groups: Counter[tuple[str, float | None, int | None]] = Counter()
    outcomes: Counter[str] = Counter()
    fuel_used = 0
    for (outcome, wall, fuel), n in rows:
        if elapsed is None:
            duration = None
        elif total_weight > 0:
            duration = elapsed * (wall or 0.0) / total_weight
        else:
            duration = elapsed / items
        groups[(outcome, duration, fuel)] += n
        outcomes[outcome] += n
        fuel_used += fuel * n if fuel is not None else 0
    for (outcome, duration, fuel), n in groups.items():
        rec.job(queue, module, function, outcome, duration_s=duration, fuel=fuel, n=n)
    overall = next(iter(outcomes)) if len(outcomes) == 1 else "mixed"
    level = log.info if overall == SUCCEEDED else log.warning
    level("job finished", outcome=overall, outcomes=dict(outcomes), fuel=fuel_used, **fields)


def on_internal_error(
    sender: Any = None, task_id: str | None = None, args: Any = None, kwargs: Any = None,
    exception: BaseException | None = None, **_: object,
) -> None:  # fmt: skip
    """A message Celery could not call the task with (e.g. keyword arguments that are not a mapping)."""
    if task_id is not None:
        current().started.pop(task_id, None)
    _main_failure(sender, task_id, args=args, kwargs=kwargs, exception=exception, duration=None)


# -- worker's main process -------------------------------------------------------------------------


def on_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, args: Any = None,
    kwargs: Any = None, **_: object,
) -> None:  # fmt: skip
    """Only failures decided in the main process: a lost pool process, the hard time limit (once per attempt)."""
    if isinstance(exception, WorkerLostError):
        _main_failure(sender, task_id, args=args, kwargs=kwargs, exception=exception, duration=None)
    elif isinstance(exception, TimeLimitExceeded):
        if not current().first_time_out(str(task_id)):
            return
        limit = exception.args[0] if exception.args else None
        duration = float(limit) if isinstance(limit, int | float) else None
        _main_failure(sender, task_id, args=args, kwargs=kwargs, exception=exception, duration=duration)


def _main_failure(
    sender: Any, task_id: Any, *, args: Any, kwargs: Any, exception: BaseException | None, duration: float | None
) -> None:
    try:
        name = getattr(sender, "name", None)
        module, function, items = _call_args(name, args, kwargs)
        ctx = _context(sender)
        outcome = to_error(exception).type
        lm, lf = labels(module, function)
        share = duration / items if duration is not None else None
        current().recorder.job(ctx["queue"], lm, lf, outcome, duration_s=share, fuel=None, n=items)
        log.warning(
            "job finished", job_id=task_id, task=TASKS.get(str(name), name), module=_short(module),
            function=_short(function),
            attempt=ctx["attempt"], worker=ctx["worker"], queue=ctx["queue"], outcome=outcome, items=items,
            duration_ms=round(duration * 1000.0, 3) if duration is not None else None, fuel=None,
            error=f"{type(exception).__name__}: {exception}"[:300],
        )  # fmt: skip
    except Exception:
        log.exception("recording a job failed", job_id=task_id)


def on_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: object) -> None:
    """`task_retry` in the main process: a job sent again after its pool process died."""
    exc = getattr(reason, "exc", None)
    if not isinstance(exc, WorkerLostError) or getattr(sender, "name", None) not in TASKS:
        return
    try:
        args, kwargs = getattr(request, "args", None), getattr(request, "kwargs", None)
        module, function, items = _call_args(sender.name, args, kwargs)
        delivery = getattr(request, "delivery_info", None) or {}
        queue = current().settings.home_queue(delivery.get("routing_key"))
        lm, lf = labels(module, function)
        current().recorder.retry(queue, lm, lf, "WorkerLost", n=items)
        log.warning(
            "job retry", job_id=getattr(request, "id", None), task=TASKS[sender.name], module=_short(module),
            function=_short(function), attempt=int(getattr(request, "retries", 0) or 0) + 1,
            worker=getattr(request, "hostname", None) or current().node, queue=queue, outcome="retry",
            reason="WorkerLost", items=items, fuel=None, duration_ms=None,
        )  # fmt: skip
    except Exception:
        log.exception("recording a retry failed")
