"""The worker's result backend: what it stores is readable by any Celery client, bounded, and says nothing
about the server.

- A failed job's result is always one of our typed errors (Celery's own exceptions, such as the hard time
  limit's, are mapped to the taxonomy), stored the way Celery stores exceptions, so any Celery client can
  rebuild it: `{"exc_type": "<type>", "exc_module": "worker.errors", "exc_message": [<message>, {"type",
  "message", "retryable", ...details}]}`. docs/contract/ describes it.
- No traceback is stored (the worker's log has it): no server file path leaves the worker that way, nor
  through an error message (worker/outcome.py `public_error`).
- With `result_extended`, Celery stores each job's arguments next to its result: they are cut short here,
  so that a refused 100 MB input is not kept for a day.
- No stored value is larger than `WASMQ_MAX_RESULT_BYTES`: the tasks keep their results within it
  (worker/queue/fitting.py); anything that still is larger is stored as `InvalidOutput` instead.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend, SentinelBackend
from celery.states import FAILURE

from ..bounds import Cut, bounded_copy
from ..config import get_settings
from ..errors import InvalidOutput, WasmqError
from ..outcome import public_error, to_error

ARGUMENTS_KEPT = Cut(max_string=256, max_items=20, max_depth=4)
ERROR_MODULE = "worker.errors"


def stored_exception(exc: BaseException) -> dict[str, Any]:
    """An exception as a Celery result stores it, always as one of our typed errors."""
    error = exc if isinstance(exc, WasmqError) else to_error(exc)
    shown = public_error(error)
    return {"exc_type": error.type, "exc_module": ERROR_MODULE, "exc_message": [shown["message"], shown]}


class _Storing(RedisBackend):  # type: ignore[misc]
    """What both of our result backends store (see the module docstring), over Celery's Redis backends."""

    def prepare_exception(self, exc: BaseException, serializer: str | None = None) -> Any:
        return stored_exception(exc)

    def _store_result(
        self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        return super()._store_result(task_id, result, state, None, request, **kwargs)

    def _get_result_meta(self, result: Any, state: str, traceback: Any, request: Any, *args: Any, **kw: Any) -> Any:
        meta = super()._get_result_meta(result, state, traceback, request, *args, **kw)
        for key in ("args", "kwargs"):
            if meta.get(key) is not None:
                meta[key] = bounded_copy(meta[key], ARGUMENTS_KEPT)[0]
        return meta

    def _set_with_state(self, key: Any, value: Any, state: str) -> Any:
        limit = (self.app.conf.get("wasmq_settings") or get_settings()).max_result_bytes
        if isinstance(value, str | bytes) and len(value) > limit:
            prefix = self.task_keyprefix.decode() if isinstance(self.task_keyprefix, bytes) else self.task_keyprefix
            name = key.decode() if isinstance(key, bytes) else str(key)
            task_id = name[len(prefix) :] if name.startswith(prefix) else name
            error = InvalidOutput(f"the job's result takes {len(value)} bytes, above WASMQ_MAX_RESULT_BYTES={limit}")
            meta = self._get_result_meta(self.prepare_exception(error), FAILURE, None, None)
            meta["task_id"] = task_id
            value, state = self.encode(meta), FAILURE
        return super()._set_with_state(key, value, state)


class WasmqRedisBackend(_Storing):
    """Celery's Redis result backend, storing what the module docstring says."""


class WasmqSentinelBackend(_Storing, SentinelBackend):  # type: ignore[misc]  # (its MRO: _Storing first)
    """The same, for a result backend behind Redis Sentinel (`sentinel://` URLs)."""
