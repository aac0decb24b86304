"""A job's result, in one shape for both sides: the entries a worker stores per input, the `Outcome` a
producer reads back from them, and the mapping from whatever a Celery result holds (our typed errors,
Celery's own exceptions, raw JSON) to the error taxonomy.

A chunk result's entry per input is `{"ok": true, "output": ..., "usage": {...}}` or
`{"ok": false, "error": {"type", "message", "retryable", ...}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery.exceptions import TimeLimitExceeded, WorkerLostError

from .bounds import short_repr, without_paths
from .errors import DeadlineExceeded, JobFailed, WasmqError, WorkerLost

MAX_ERROR_MESSAGE = 2000  # characters of an error message kept in a stored result or a dead letter


class _Usage(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Answer(Protocol):
    """What a successful call gives (worker/sandbox/result.py's `CallResult`)."""

    @property
    def output(self) -> str: ...

    @property
    def usage(self) -> _Usage: ...


def public_error(error: WasmqError) -> dict[str, Any]:
    """An error's JSON shape as it is stored for any producer to read: `type`, `message`, `retryable` and
    the details, with the message bounded and no server file path in any text."""
    out = error.to_dict()
    message = without_paths(error.message)
    out["message"] = message if len(message) <= MAX_ERROR_MESSAGE else message[:MAX_ERROR_MESSAGE] + "..."
    for key, value in error.details.items():
        if isinstance(value, str):
            out[key] = without_paths(value)[:MAX_ERROR_MESSAGE]
    return out


def item_entry(result: Answer | WasmqError) -> dict[str, Any]:
    """One input's outcome inside a chunk result."""
    if isinstance(result, WasmqError):
        return {"ok": False, "error": public_error(result)}
    return {"ok": True, "output": result.output, "usage": result.usage.to_dict()}


def chunk_entries(results: Sequence[Answer | WasmqError]) -> list[dict[str, Any]]:
    """`item_entry` for every result of a chunk; the items of one batch call share one usage, so its dict is
    built once (it is serialized once per item all the same)."""
    usage: dict[int, dict[str, Any]] = {}
    entries = []
    for result in results:
        if isinstance(result, WasmqError):
            entries.append({"ok": False, "error": public_error(result)})
            continue
        shared = usage.get(id(result.usage))
        if shared is None:
            shared = usage[id(result.usage)] = result.usage.to_dict()
        entries.append({"ok": True, "output": result.output, "usage": shared})
    return entries


@dataclass(frozen=True)
class Outcome:
    """A finished job (or batch item): an output with its usage, or a typed error."""

    ok: bool
    output: str | None = None
    error: WasmqError | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # worker, attempt, job_id where known

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "output": self.output, "usage": self.usage}
        assert self.error is not None
        return {"ok": False, "error": self.error.to_dict()}

    @classmethod
    def failed(cls, error: WasmqError) -> Outcome:
        return cls(ok=False, error=error)

    @classmethod
    def from_entry(cls, entry: Any, meta: dict[str, Any] | None = None) -> Outcome:
        """One `{ok, output, usage}` / `{ok: false, error}` entry of a chunk result."""
        if not isinstance(entry, dict):
            return cls.failed(JobFailed(f"malformed result entry: {short_repr(entry, 200)}"))
        if entry.get("ok"):
            return cls(ok=True, output=entry.get("output"), usage=entry.get("usage") or {}, meta=meta or {})
        return cls(ok=False, error=WasmqError.from_dict(entry.get("error") or {}), meta=meta or {})


def to_error(value: Any) -> WasmqError:
    """The typed error for a failed task's result, whatever shape it arrived in."""
    if isinstance(value, WasmqError):
        return value
    if isinstance(value, WorkerLostError):
        return WorkerLost(f"the worker process died under the job: {value}")
    if isinstance(value, TimeLimitExceeded):
        return DeadlineExceeded(f"the job hit the worker's hard time limit: {value}")
    if isinstance(value, dict) and "exc_type" in value:
        message = value.get("exc_message")
        if isinstance(message, list | tuple) and message:
            details = message[1] if len(message) > 1 and isinstance(message[1], dict) else {}
            return WasmqError.from_dict({**details, "type": value["exc_type"], "message": _text(message[0])})
        return WasmqError.from_dict({"type": value["exc_type"], "message": _text(message)})
    if isinstance(value, BaseException):
        return JobFailed(f"{type(value).__name__}: {value}", original_type=type(value).__name__)
    return JobFailed(f"job failed with an unexpected result: {short_repr(value, 200)}")


def _text(value: Any) -> str:
    """A stored message as text: itself if it is text, else a short repr (a stored value can be anything)."""
    return value if isinstance(value, str) else short_repr(value, MAX_ERROR_MESSAGE)
