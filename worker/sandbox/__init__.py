"""The wasmtime sandbox: engine and epoch ticker, ABI adapters, one call, output checks, trap mapping.

`Sandbox`, `CallResult` and `Usage` are imported on first use (PEP 562), so that a process that needs only
one submodule, such as the bounded compiler's child (`python -m worker.sandbox.compiler`), does not load the
whole runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import CallResult, Sandbox, Usage

__all__ = ["CallResult", "Sandbox", "Usage"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
