"""What a worker says about itself to `wasmq status`: a remote-control command answered by its main process.

One broadcast (`app.control.broadcast("wasmq_status", reply=True)`) reaches every worker on the broker;
each answers with its node name, the queues it consumes, its pool size, and the jobs it is running now with
their start time and deadline. Nothing is recorded per job for this: Celery's main process already knows
its active requests (`celery.worker.state`), with the time each one started.

A job's deadline is its wall-clock budget: the call's `timeout_ms` (the job's own limit, or the module's)
for a single call; for a chunk of n items, (n + 1) times that (one batch call, then possibly each item
alone), the budget the client also sets Celery's time limits from.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery.worker.control import inspect_command

from ..chunk_result import longest_run_s
from ..errors import InvalidInput, WasmqError
from ..keys import CALL_MANY_TASK, CALL_TASK, STATUS_COMMAND
from .contract import bind, parts
from .contract import items as items_of
from .state import current


def _timeout_ms(module: Any, limits: Any) -> int | None:
    if isinstance(limits, dict) and isinstance(limits.get("timeout_ms"), int):
        return int(limits["timeout_ms"])
    if not isinstance(module, str):
        return None
    try:
        return current().catalog.resolve(module).limits.timeout_ms
    except WasmqError:
        return None


def _budget_s(args: Any, kwargs: Any) -> float | None:
    try:
        return bind(CALL_MANY_TASK, args, kwargs).budget_s
    except InvalidInput:
        return None


def describe_request(request: Any, now: float) -> dict[str, Any]:
    """One running job as `wasmq status` shows it."""
    args, kwargs = getattr(request, "args", None), getattr(request, "kwargs", None)
    module, function, inputs, limits = parts(request.name, args, kwargs)
    items = items_of(request.name, inputs)
    timeout_ms = _timeout_ms(module, limits) if request.name in (CALL_TASK, CALL_MANY_TASK) else None
    deadline_s = None
    if timeout_ms is not None and request.name == CALL_MANY_TASK:
        deadline_s = longest_run_s(timeout_ms, items, _budget_s(args, kwargs))
    elif timeout_ms is not None:
        deadline_s = timeout_ms / 1000.0
    started = request.time_start
    hard_limit = (getattr(request, "time_limits", None) or (None, None))[0]  # (hard, soft)
    return {
        "id": request.id,
        "task": request.name,
        "module": module if isinstance(module, str) else None,
        "function": function if isinstance(function, str) else None,
        "items": items,
        "attempt": int((request.request_dict or {}).get("retries") or 0) + 1,
        "pid": request.worker_pid,
        "started_at": started,
        "elapsed_s": round(now - started, 3) if started else None,
        "deadline_s": deadline_s,
        "time_limit_s": hard_limit,
    }


@inspect_command(name=STATUS_COMMAND)  # type: ignore[misc,untyped-decorator]
def wasmq_status(state: Any, **_: Any) -> dict[str, Any]:
    """wasmq: queues, pool size and running jobs of this worker."""
    from celery.worker import state as worker_state

    consumer = state.consumer
    now = time.time()
    active = [describe_request(r, now) for r in list(worker_state.active_requests)]
    task_consumer = getattr(consumer, "task_consumer", None)
    queues = sorted(q.name for q in getattr(task_consumer, "queues", None) or [])
    pool = getattr(consumer, "pool", None)
    return {
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": getattr(pool, "num_processes", None) or getattr(consumer.controller, "concurrency", None),
        "active": active,
        "reserved": max(0, len(worker_state.reserved_requests) - len(active)),
    }
