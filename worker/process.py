"""Per-process worker state: the sandbox, built after fork and never at import.

Celery's prefork pool forks children from a parent that must not own an Engine or a ticker thread
(threads do not survive fork). `init_sandbox` runs in `worker_process_init`; `get_sandbox` builds lazily
for pools that send no such signal (solo, threads) and for the CLI.
"""

from __future__ import annotations

import threading
import time

from .config import get_settings
from .errors import WasmqError
from .sandbox import Sandbox

_sandbox: Sandbox | None = None
_lock = threading.Lock()
WARM_BUDGET_S = 2.0  # worker_process_init handlers must finish within 4 s


def get_sandbox() -> Sandbox:
    global _sandbox
    if _sandbox is None:
        with _lock:
            if _sandbox is None:
                _sandbox = Sandbox.from_settings(get_settings())
    return _sandbox


def init_sandbox(**_: object) -> None:
    """Build the sandbox and load registered modules from the precompiled cache, within a time budget. Nothing is
    compiled here: a compile may take far longer than the 4 s Celery allows (the first job compiles it)."""
    sandbox = get_sandbox()
    deadline = time.monotonic() + WARM_BUDGET_S
    for spec in sandbox.registry.catalog:
        if time.monotonic() > deadline:
            break
        try:
            sandbox.load(spec, compile=False)
        except WasmqError:
            pass  # reported per job as ModuleRejected; one bad module must not stop the worker


def close_sandbox(**_: object) -> None:
    global _sandbox
    if _sandbox is not None:
        _sandbox.close()
        _sandbox = None
