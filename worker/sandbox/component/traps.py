"""Component failures → the error taxonomy, in one function (`classify_component_error`).

wasmtime-py 50 raises every component failure as a plain `WasmtimeError`: no `Trap`, no trap code (its C API
has no way to read one from an error). So the trap code is read from the root cause of the message
("wasm trap: <text>"), with the text-to-code table built from the running wasmtime itself (a trap made from
each `TrapCode` gives its exact wording), and an unrecognised text falls back on what the host measured: no
fuel left → `FuelExhausted`, past the deadline → `DeadlineExceeded`. A failure raised during a call that is not
a trap is the canonical ABI refusing the component's answer (`InvalidOutput`). A refused `memory.grow` leaves
no trace at all; `CallFacts.memory_mattered` carries the verdict of the runner's replay (see component.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import wasmtime

from ...errors import (
    DeadlineExceeded,
    FuelExhausted,
    InternalError,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleTrap,
    WasmqError,
)


def _trap_texts() -> dict[str, wasmtime.TrapCode]:
    """Each trap code's message, from the running wasmtime (so the table always matches its wording)."""
    texts = {}
    try:
        from wasmtime import _ffi as ffi

        for code in wasmtime.TrapCode:
            trap = wasmtime.Trap._from_ptr(ffi.wasmtime_trap_new_code(code.value))
            texts[trap.message.strip()] = code
    except (AttributeError, ImportError, TypeError, ValueError, wasmtime.WasmtimeError):
        pass  # private API gone: the fixed wording below still covers the codes classified specially
    texts.setdefault("wasm trap: all fuel consumed by WebAssembly", wasmtime.TrapCode.OUT_OF_FUEL)
    texts.setdefault("wasm trap: interrupt", wasmtime.TrapCode.INTERRUPT)
    texts.setdefault("wasm trap: wasm `unreachable` instruction executed", wasmtime.TrapCode.UNREACHABLE)
    return texts


TRAP_TEXTS = _trap_texts()
_MEMORY_AT_INSTANTIATION = ("exceeds memory limits", "memory minimum size")


def root_cause(exc: BaseException) -> str:
    """The last line of a wasmtime error ("wasm trap: ..." after the backtrace), or the whole of a short one."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no message")[:400]


def trap_code_of(exc: BaseException) -> wasmtime.TrapCode | None:
    """The trap code: structured when wasmtime gives a `Trap`, else read from the message's root cause."""
    if isinstance(exc, wasmtime.Trap):
        return exc.trap_code
    return TRAP_TEXTS.get(root_cause(exc))


@dataclass(frozen=True, kw_only=True)
class CallFacts:
    """What the host measured around a failed call; `memory_mattered` comes from the replay (None: unknown)."""

    phase: Literal["instantiate", "call"]
    fuel: int
    fuel_left: int
    elapsed_ms: float
    timeout_ms: int
    memory_cap: int
    memory_mattered: bool | None = None


def classify_component_error(exc: BaseException, facts: CallFacts) -> WasmqError | None:
    """The typed error for a failed component call, or None when it is not the component's doing (re-raise).

    Order: a known trap code decides (OUT_OF_FUEL, INTERRUPT); a message wasmtime's wording no longer
    matches falls back on the facts (no fuel left, deadline passed); a memory minimum above the cap at
    instantiation; a canonical-ABI failure while calling (bad pointer, bad length, invalid UTF-8, bad
    `cabi_realloc` answer: anything raised during a call that is not a trap); a trap whose outcome the memory
    cap changed; any other trap.
    """
    if isinstance(exc, WasmqError):
        return exc
    if not isinstance(exc, (wasmtime.WasmtimeError, wasmtime.Trap)):
        return None
    if isinstance(exc, wasmtime.ExitTrap):
        return ModuleTrap(f"component exited with code {exc.code}", trap_code="exit", exit_code=exc.code)
    cause = root_cause(exc)
    if "maximum concurrent" in cause:  # the instance pool is full (worker/sandbox/pool.py): the host's doing
        return InternalError(f"the sandbox's instance pool is exhausted: {cause}")
    code = trap_code_of(exc)
    recognised = code is not None or _is_canonical_abi_error(cause) or _memory_at_instantiation(cause)
    if code == wasmtime.TrapCode.OUT_OF_FUEL or (not recognised and facts.fuel_left == 0):
        return FuelExhausted(f"call used up its fuel budget of {facts.fuel}")
    if code == wasmtime.TrapCode.INTERRUPT or (not recognised and facts.elapsed_ms >= facts.timeout_ms):
        return DeadlineExceeded(f"call ran past its deadline of {facts.timeout_ms} ms")
    if _memory_at_instantiation(cause):
        return MemoryLimitExceeded(f"component needs more memory than its cap of {facts.memory_cap} bytes: {cause}")
    is_trap = code is not None or cause.startswith("wasm trap:")
    if not is_trap and facts.phase == "call":
        return InvalidOutput(f"component broke the canonical ABI: {cause}")
    name = code.name.lower() if code is not None else ("unknown" if is_trap else "instantiation")
    if facts.memory_mattered:
        return MemoryLimitExceeded(
            f"component trapped ({name}) because its memory cap of {facts.memory_cap} bytes refused to grow: {cause}",
            trap_code=name,
        )
    return ModuleTrap(f"component trapped ({name}): {cause}", trap_code=name)


def _is_canonical_abi_error(cause: str) -> bool:
    """wasmtime's wording for lift/lower failures (host-side, no trap code); used only to tell them from an
    unrecognised trap text, never to decide between ABI failure and trap (that is `is_trap`)."""
    return any(w in cause for w in ("out of bounds", "utf-8", "realloc", "not aligned", "invalid", "pointer"))


def _memory_at_instantiation(cause: str) -> bool:
    return any(w in cause for w in _MEMORY_AT_INSTANTIATION)
