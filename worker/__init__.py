"""wasmq: a job queue that runs untrusted WebAssembly module calls in a wasmtime sandbox.

The public surface: `Client` (submit and map jobs), `Settings`, `Outcome`, and the errors. `Client` is loaded
on first use, so `import worker` stays cheap for code that needs only the settings or the errors.
"""

from typing import TYPE_CHECKING, Any

from .config import Settings, get_settings
from .errors import (
    BrokerUnavailable,
    ConfigError,
    DeadlineExceeded,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    JobFailed,
    JobTimeout,
    MalformedMessage,
    MemoryLimitExceeded,
    ModuleNotFound,
    ModuleRejected,
    ModuleTrap,
    ResultTooLarge,
    WasmqError,
    WorkerLost,
)
from .outcome import Outcome

if TYPE_CHECKING:
    from .producer.client import Client, Job


def __getattr__(name: str) -> Any:
    if name in ("Client", "Job"):
        from .producer import client

        return getattr(client, name)
    raise AttributeError(f"module 'worker' has no attribute {name!r}")


__all__ = [
    "BrokerUnavailable",
    "Client",
    "ConfigError",
    "DeadlineExceeded",
    "FuelExhausted",
    "InvalidInput",
    "InvalidOutput",
    "Job",
    "JobFailed",
    "JobTimeout",
    "MalformedMessage",
    "MemoryLimitExceeded",
    "ModuleNotFound",
    "ModuleRejected",
    "ModuleTrap",
    "Outcome",
    "ResultTooLarge",
    "Settings",
    "WasmqError",
    "WorkerLost",
    "get_settings",
]
