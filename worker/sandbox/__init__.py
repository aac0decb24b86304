"""One sandboxed call: engine and epoch ticker, backends for core modules and components, output checks.

Below the catalog: the sandbox is handed specs and bytes (`loading.ModuleSource`) and never looks modules up.
`Sandbox`, `CallResult` and `Usage` are imported on first use (PEP 562), so that a process that needs only one
submodule, such as the bounded compiler's child (`python -m worker.sandbox.compiler`), does not load the
whole runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import CallResult, Usage
    from .runtime import Sandbox

__all__ = ["CallResult", "Sandbox", "Usage"]


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        from .runtime import Sandbox

        return Sandbox
    if name in ("CallResult", "Usage"):
        from . import result

        return getattr(result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
