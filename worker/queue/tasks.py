"""The tasks: one call, and one chunk of calls of the same module and function.

Arguments arrive as JSON from any producer, in order or by name (worker/queue/contract.py): each is checked
and a wrong one is `InvalidInput` naming it (the consumer has already refused such messages, see intake.py;
the task checks again for whatever else calls it). A single call that fails raises its typed error (the
job's state is FAILURE and its result the error); a chunk always succeeds as a task and answers every
input, in order, within the result size limit (worker/queue/fitting.py): outputs and errors by index with one
usage for the chunk, or one `{ok, output|error}` entry per input when asked (worker/chunk_result.py); with a
time budget, every input it reached before the budget ran out.
Retries follow `worker/queue/retry.py`; a redelivered message whose result is already stored is not run again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import compress, count, repeat
from typing import Any

from celery import Celery, Task
from celery.states import SUCCESS

from .. import chunk_result
from ..config import get_settings
from ..connections import CONNECTION_ERRORS
from ..errors import DeadlineExceeded, WasmqError
from ..keys import CALL_MANY_TASK, CALL_TASK
from .contract import Call, bind, parts
from .fitting import check_output, fit_chunk, fit_lean
from .retry import RetryPolicy
from .state import current

# Characters of a result in the worker's "Task ... succeeded" log line (Celery's default: 1024). Celery formats
# it for every job, logged or not, with a saferepr that costs about 40 µs for a single call's result dict at
# 256 characters or more (as much as the sandboxed call itself) and walks a chunk's results up to the limit;
# at 32 it costs about 9 µs and still shows the start of the output.
MAX_RESULT_REPR = 32


def _job_info(task: Task) -> dict[str, Any]:
    request = task.request
    return {"worker": request.hostname, "pid": os.getpid(), "attempt": request.retries + 1, "job_id": request.id}


def _stored_result(task: Task) -> Any:
    """For a redelivered message only: the result a previous delivery already stored, if any."""
    if not (task.request.delivery_info or {}).get("redelivered"):
        return None
    meta = task.backend.get_task_meta(task.request.id)
    return meta.get("result") if meta.get("status") == SUCCESS else None


def _max_retries(module: Any, limits: Any) -> int:
    if not isinstance(module, str) or not isinstance(limits, dict | None):
        return 0
    try:
        return current().catalog.resolve(module).limits.narrowed(limits).max_retries
    except WasmqError:
        return 0


def _retry_or_raise(task: Task, exc: BaseException, module: str, limits: dict[str, Any] | None) -> None:
    """Retry `exc` if the policy says so (raises celery's Retry); otherwise return and let the caller raise."""
    policy = RetryPolicy.from_settings(get_settings())
    retries = task.request.retries
    max_retries = _max_retries(module, limits)
    if policy.should_retry(exc, retries_done=retries, max_retries=max_retries):
        raise task.retry(exc=exc, countdown=policy.countdown(retries), max_retries=max_retries)


@contextmanager
def _failures(task: Task, module: Any, limits: Any, info: dict[str, Any]) -> Iterator[None]:
    """A typed error gets the job's info; it and connection errors are retried if the policy says so."""
    try:
        yield
    except WasmqError as exc:
        exc.details.update(info)
        _retry_or_raise(task, exc, module, limits)
        raise
    except CONNECTION_ERRORS as exc:
        _retry_or_raise(task, exc, module, limits)
        raise


def run_call(task: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """wasmq.call(module, function, input, limits=None)"""
    stored = _stored_result(task)
    if stored is not None:
        return dict(stored)
    info = _job_info(task)
    module, _, _, limits = parts(CALL_TASK, args, kwargs)
    with _failures(task, module, limits, info):
        call = bind(CALL_TASK, args, kwargs)
        result = current().sandbox.call(call.module, call.function, call.payload, call.limits)
        check_output(result.output, get_settings())
    return {**result.to_dict(), "module": call.module, "function": call.function, **info}


def _run_steps(call: Call, inputs: list[Any], until: float | None, *, first: bool) -> list[Any]:
    """Results for the first of `inputs`: all at once without a budget; else `chunk_result.STEP` at a time,
    starting no step at or after `until` (a `time.perf_counter()` reading), except the first if `first`."""
    sandbox = current().sandbox
    if until is None:
        return sandbox.call_many(call.module, call.function, inputs, call.limits)
    results: list[Any] = []
    for start in range(0, len(inputs), chunk_result.STEP):
        if (start or not first) and time.perf_counter() >= until:
            break
        results.extend(sandbox.call_many(call.module, call.function, inputs[start : start + chunk_result.STEP],
                                         call.limits))  # fmt: skip
    return results


def _rerun_deadline_items(call: Call, results: list[Any], until: float | None) -> list[Any]:
    """Items of a chunk that hit their deadline are run again in place, up to the policy's count (and while
    the chunk's budget lasts)."""
    policy = RetryPolicy.from_settings(get_settings())
    for _ in range(min(policy.deadline_retries, _max_retries(call.module, call.limits))):
        late = list(compress(count(), map(isinstance, results, repeat(DeadlineExceeded))))  # a pass in C
        if not late:
            break
        again = _run_steps(call, [call.payload[i] for i in late], until, first=False)
        for index, result in zip(late[: len(again)], again, strict=True):
            results[index] = result
    return results


def run_call_many(task: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """wasmq.call_many(module, function, inputs, limits=None, usage="chunk", budget_s=None)"""
    stored = _stored_result(task)
    if stored is not None:
        return dict(stored)
    info = _job_info(task)
    module, _, _, limits = parts(CALL_MANY_TASK, args, kwargs)
    started = time.perf_counter()
    with _failures(task, module, limits, info):
        call = bind(CALL_MANY_TASK, args, kwargs)
        until = None if call.budget_s is None else started + call.budget_s
        results = _run_steps(call, call.payload, until, first=True)
        results = _rerun_deadline_items(call, results, until)
    body = chunk_result.build(results, call.usage)
    settings = get_settings()
    if "results" in body:
        body["results"] = fit_chunk(body["results"], settings)
    else:
        body = fit_lean(body, settings)
    if len(results) < len(call.payload):
        body["unreached"] = len(call.payload) - len(results)  # the budget ran out: the producer sends them again
    # The chunk's time in the sandbox: producers size their next chunks by it (worker/producer/sizing.py).
    body["seconds"] = round(time.perf_counter() - started, 6)
    return {**body, "module": call.module, "function": call.function, **info}


def register(app: Celery) -> None:
    """Register the tasks on `app` (producers send them by name and never import this module)."""
    settings = get_settings()
    options: dict[str, Any] = {
        "bind": True,
        "throws": (WasmqError,),
        # A job whose pool process dies is sent again, at most this often, then fails as WorkerLost.
        "retry_on_worker_lost": True,
        "max_retries": settings.max_worker_lost_retries,
        "default_retry_delay": 1,
        "resultrepr_maxsize": MAX_RESULT_REPR,
    }
    app.task(name=CALL_TASK, **options)(run_call)
    app.task(name=CALL_MANY_TASK, **options)(run_call_many)
