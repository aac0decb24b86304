"""The tasks: one call, and one chunk of calls of the same module and function.

Arguments arrive as JSON from any producer, so each is checked and a wrong one is `InvalidInput` naming
it. A single call that fails raises its typed error (the job's state is FAILURE and its result the error);
a chunk always succeeds as a task and carries one `{ok, output|error}` entry per input, in order.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task

from .constants import CALL_MANY_TASK, CALL_TASK
from .errors import InvalidInput, WasmqError
from .process import get_sandbox
from .sandbox import CallResult

MAX_CHUNK_ITEMS = 10_000


def _check_call_args(module: Any, function: Any, limits: Any) -> None:
    if not isinstance(module, str) or not module:
        raise InvalidInput(f"'module' must be a non-empty string, not {module!r:.80}")
    if not isinstance(function, str) or not function:
        raise InvalidInput(f"'function' must be a non-empty string, not {function!r:.80}")
    if limits is not None and not isinstance(limits, dict):
        raise InvalidInput(f"'limits' must be an object, not {type(limits).__name__}")


def _job_info(task: Task) -> dict[str, Any]:
    return {
        "worker": task.request.hostname,
        "pid": os.getpid(),
        "attempt": task.request.retries + 1,
        "job_id": task.request.id,
    }


def item_entry(result: CallResult | WasmqError) -> dict[str, Any]:
    """One input's outcome inside a chunk result."""
    if isinstance(result, WasmqError):
        return {"ok": False, "error": result.to_dict()}
    return {"ok": True, **result.to_dict()}


def run_call(task: Task, module: Any, function: Any, input: Any, limits: Any = None) -> dict[str, Any]:
    info = _job_info(task)
    try:
        _check_call_args(module, function, limits)
        result = get_sandbox().call(module, function, input, limits)
    except WasmqError as exc:
        exc.details.update(info)
        raise
    return {**result.to_dict(), "module": module, "function": function, **info}


def run_call_many(task: Task, module: Any, function: Any, inputs: Any, limits: Any = None) -> dict[str, Any]:
    info = _job_info(task)
    try:
        _check_call_args(module, function, limits)
        if not isinstance(inputs, list):
            raise InvalidInput(f"'inputs' must be a list, not {type(inputs).__name__}")
        if len(inputs) > MAX_CHUNK_ITEMS:
            raise InvalidInput(f"a chunk holds at most {MAX_CHUNK_ITEMS} inputs, not {len(inputs)}")
        results = get_sandbox().call_many(module, function, inputs, limits)
    except WasmqError as exc:
        exc.details.update(info)
        raise
    return {"results": [item_entry(r) for r in results], "module": module, "function": function, **info}


def register(app: Celery) -> None:
    """Register the tasks on `app` (producers send them by name and never import this module)."""
    app.task(name=CALL_TASK, bind=True, throws=(WasmqError,))(run_call)
    app.task(name=CALL_MANY_TASK, bind=True, throws=(WasmqError,))(run_call_many)
