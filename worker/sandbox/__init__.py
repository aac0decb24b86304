"""The wasmtime sandbox: engine and epoch ticker, ABI adapters, one call, output checks, trap mapping."""

from .runtime import CallResult, Sandbox, Usage

__all__ = ["CallResult", "Sandbox", "Usage"]
