"""Turn whatever wasmtime raises into the error taxonomy, in one place.

Traps are classified by `Trap.trap_code` (OUT_OF_FUEL, INTERRUPT, ...), not by parsing messages. The two
exceptions: instantiation that fails on a store limit (a memory minimum or a table minimum above its cap, more
tables than allowed: wasmtime reports these as plain errors), and a trap raised while the memory already sits
at its cap, which is how an allocation failure inside the module shows (`memory.grow` returns -1, the module
aborts with `unreachable`): see `_looks_like_allocation_failure`.
"""

from __future__ import annotations

import wasmtime

from ..errors import (
    DeadlineExceeded,
    FuelExhausted,
    InternalError,
    MemoryLimitExceeded,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
)

WASM_PAGE = 65_536
_MESSAGE_CHARS = 400


def _short(message: str) -> str:
    """The cause of a wasmtime error (its last line: 'wasm trap: ...'), without the backtrace."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no message")[:_MESSAGE_CHARS]


def _looks_like_allocation_failure(code: wasmtime.TrapCode | None, memory_bytes: int | None, cap: int) -> bool:
    """A refused `memory.grow` returns -1 and the module usually aborts; wasmtime-py offers no hook to see
    the refusal, so: a trap with memory within a page of the cap, or an abort (`unreachable`) with more
    than half the cap in use (a doubling allocator's last request can be up to half the memory)."""
    if memory_bytes is None:
        return False
    if memory_bytes + WASM_PAGE > cap:
        return True
    return code == wasmtime.TrapCode.UNREACHABLE and memory_bytes * 2 >= cap


def classify(
    exc: BaseException, *, memory_bytes: int | None, memory_cap: int, fuel: int, timeout_ms: int
) -> WasmqError | None:
    """The typed error for `exc`, or None when it is not a module-caused failure (a host bug: re-raise)."""
    if isinstance(exc, WasmqError):
        return exc
    if isinstance(exc, wasmtime.ExitTrap):
        code = getattr(exc, "code", None)
        return ModuleTrap(f"module exited via proc_exit({code}) without answering", trap_code="exit", exit_code=code)
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return FuelExhausted(f"call used up its fuel budget of {fuel}")
        if code == wasmtime.TrapCode.INTERRUPT:
            return DeadlineExceeded(f"call ran past its deadline of {timeout_ms} ms")
        if _looks_like_allocation_failure(code, memory_bytes, memory_cap):
            return MemoryLimitExceeded(
                f"module trapped with its memory near the cap ({memory_bytes} of {memory_cap} bytes): "
                f"{_short(exc.message)}",
                trap_code=code.name.lower() if code is not None else None,
            )
        name = code.name.lower() if code is not None else "unknown"
        return ModuleTrap(f"module trapped ({name}): {_short(exc.message)}", trap_code=name)
    if isinstance(exc, wasmtime.WasmtimeError):
        text = str(exc)
        if "exceeds memory limits" in text or "memory minimum size" in text:
            return MemoryLimitExceeded(f"module needs more memory than its cap of {memory_cap} bytes: {_short(text)}")
        if "exceeds table limits" in text:  # a table minimum above the per-table element cap (host memory)
            return MemoryLimitExceeded(f"module needs a larger table than the sandbox allows: {_short(text)}")
        if "maximum concurrent" in text:  # the instance pool is full: too many stores at once, the host's doing
            return InternalError(f"the sandbox's instance pool is exhausted: {_short(text)}")
        if "resource limit exceeded" in text:  # more tables, memories or instances than one call may have
            return ModuleRejected(f"module needs more than one call may have: {_short(text)}")
        return ModuleTrap(f"module failed: {_short(text)}", trap_code="error")
    return None
