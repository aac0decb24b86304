"""One error hierarchy for wasmq.

Every failure a job can report is a `WasmqError` subclass. Each class knows the `type` string a failed job
carries (the taxonomy in the README's error table) and whether retrying the job could help: a deterministic
module fault is not retryable, a lost worker or a broker hiccup is. Every raised failure is a named leaf.
"""

from __future__ import annotations

from typing import Any, ClassVar

RESERVED = ("type", "message", "retryable")  # the fields of an error's JSON shape, never among its details


class WasmqError(Exception):
    """Base of every error wasmq raises on purpose."""

    type: ClassVar[str] = "WasmqError"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, details: dict[str, Any] | None = None, **more: Any) -> None:
        self.message = message
        self.details: dict[str, Any] = {**(details or {}), **more}
        for key in RESERVED:  # a stored error's details repeat them (worker/queue/backend.py); they are fields
            self.details.pop(key, None)
        # args stay (message, details): Celery's JSON result backend rebuilds the error as cls(*args).
        super().__init__(message, self.details)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape a failed job reports."""
        out: dict[str, Any] = {"type": self.type, "message": self.message, "retryable": self.retryable}
        out.update(self.details)
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> WasmqError:
        """Rebuild a typed error from its JSON shape (unknown types become a plain `JobFailed`)."""
        cls = ERROR_TYPES.get(str(data.get("type")), JobFailed)
        details = {k: v for k, v in data.items() if k not in ("type", "message", "retryable")}
        err = cls(str(data.get("message", "")), details)
        if cls is JobFailed and data.get("type") != JobFailed.type:  # a JobFailed round-trips unchanged
            err.details.setdefault("original_type", data.get("type"))
        return err


# -- what a job can fail with (the taxonomy) -------------------------------------------------------


class ModuleNotFound(WasmqError):
    """No module of that name (and version) is registered."""

    type = "ModuleNotFound"


class ModuleRejected(WasmqError):
    """The module's bytes, hash, imports or exports are not acceptable."""

    type = "ModuleRejected"


class InvalidInput(WasmqError):
    """The job's input or limits are unacceptable for this module and function."""

    type = "InvalidInput"


class FuelExhausted(WasmqError):
    """The call used up its fuel (deterministic CPU budget)."""

    type = "FuelExhausted"


class DeadlineExceeded(WasmqError):
    """The call ran past its wall-clock deadline; wall time depends on load, so it may be retried."""

    type = "DeadlineExceeded"
    retryable = True


class MemoryLimitExceeded(WasmqError):
    """The module wanted more linear memory than its cap allows."""

    type = "MemoryLimitExceeded"


class ModuleTrap(WasmqError):
    """The module trapped (unreachable, division by zero, stack overflow, proc_exit, ...)."""

    type = "ModuleTrap"


class InvalidOutput(WasmqError):
    """The module's answer broke the ABI: bad pointer, bad length, too large, not UTF-8, bad framing."""

    type = "InvalidOutput"


class ResultTooLarge(WasmqError):
    """This item's output did not fit in its chunk's stored result; sent alone or in a smaller chunk, it will."""

    type = "ResultTooLarge"
    retryable = True


class WorkerLost(WasmqError):
    """The worker process died under the job."""

    type = "WorkerLost"
    retryable = True


class JobFailed(WasmqError):
    """A failure whose type this version of wasmq does not know (from a newer or foreign worker)."""

    type = "JobFailed"


# -- what the host side can fail with ---------------------------------------------------------------


class ConfigError(WasmqError):
    """A setting or a manifest is malformed."""

    type = "ConfigError"


class BrokerUnavailable(WasmqError):
    """The broker or result backend cannot be reached."""

    type = "BrokerUnavailable"
    retryable = True


class JobTimeout(WasmqError):
    """The producer stopped waiting for a result; the job itself may still finish."""

    type = "JobTimeout"
    retryable = True


class PublishConflict(WasmqError):
    """This `name@version` is already published with other content; published versions are immutable."""

    type = "PublishConflict"


class PublishDenied(WasmqError):
    """The registry refused a write: the credential used is not a publisher's (see WASMQ_PUBLISHER_URL)."""

    type = "PublishDenied"


class RegistryUnavailable(WasmqError):
    """The module registry cannot be reached, and nothing cached or seeded names the module."""

    type = "RegistryUnavailable"
    retryable = True


class NotRequeueable(WasmqError):
    """A dead letter holds no complete task message (malformed or truncated), so it cannot be sent again."""

    type = "NotRequeueable"


class MalformedMessage(WasmqError):
    """A queue message no task can take: not JSON, not an envelope, unknown task, bad arguments."""

    type = "MalformedMessage"


class UsageError(WasmqError):
    """The command line is wrong: bad options, a missing file (the CLI exits with code 2)."""

    type = "UsageError"


class InternalError(WasmqError):
    """A bug: an exception no layer expected, reported with its Python type instead of a traceback."""

    type = "InternalError"


ERROR_TYPES: dict[str, type[WasmqError]] = {
    cls.type: cls
    for cls in (
        ModuleNotFound,
        ModuleRejected,
        InvalidInput,
        FuelExhausted,
        DeadlineExceeded,
        MemoryLimitExceeded,
        ModuleTrap,
        InvalidOutput,
        ResultTooLarge,
        WorkerLost,
        JobFailed,
        ConfigError,
        BrokerUnavailable,
        JobTimeout,
        PublishConflict,
        PublishDenied,
        RegistryUnavailable,
        NotRequeueable,
        MalformedMessage,
        UsageError,
        InternalError,
    )
}
