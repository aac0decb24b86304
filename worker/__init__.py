"""wasmq: a job queue that runs untrusted WebAssembly module calls in a wasmtime sandbox."""

from .config import Settings, get_settings
from .errors import (
    DeadlineExceeded,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleNotFound,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
    WorkerLost,
)

__all__ = [
    "DeadlineExceeded",
    "FuelExhausted",
    "InvalidInput",
    "InvalidOutput",
    "MemoryLimitExceeded",
    "ModuleNotFound",
    "ModuleRejected",
    "ModuleTrap",
    "Settings",
    "WasmqError",
    "WorkerLost",
    "get_settings",
]
