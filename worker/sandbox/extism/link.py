"""Linking the kernel (`kernel.py`) into a runner's Linker, and its hot functions in raw form.

Two ways: on the native path (`native.py`) every kernel function becomes a raw C callback, and the six that
PDKs call for every byte or eight (load/store, input loads) are written over the raw argument array itself;
on the public path they become wasmtime-py host functions. Either way each reads its call's state from the
runner's `Slot`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import wasmtime

from . import kernel, native
from .state import CallState, Slot

_I64 = struct.Struct("<q")


# -- the hot ones, raw ------------------------------------------------------------------------------------
# PDKs move every byte through these (an AssemblyScript greeting: 40 of its 48 kernel calls), so on the native
# path each is one function over the raw argument array (`vals[0]`, `vals[2]`: see native.py), the call's block
# cache read in place. Same answers and refusals as kernel.py's functions, which they fall back to
# whenever the access is not inside the cached block.


def _raw_load_u8(state: CallState, vals: Any) -> None:
    blocks = state.blocks
    address = vals[0]  # signed: a negative one (>= 2**63 unsigned) is never in the cache, load_u8 masks it
    if blocks.cache_start <= address < blocks.cache_end:
        vals[0] = blocks.cached[address - blocks.cache_start]
    else:
        vals[0] = kernel.load_u8(state, address)


def _raw_store_u8(state: CallState, vals: Any) -> None:
    blocks = state.blocks
    address = vals[0]
    if blocks.cache_start <= address < blocks.cache_end:
        blocks.cached[address - blocks.cache_start] = vals[2] & 0xFF
    else:
        kernel.store_u8(state, address, vals[2])


def _raw_load_u64(state: CallState, vals: Any) -> None:
    blocks = state.blocks
    address = vals[0]
    if blocks.cache_start <= address and address + 8 <= blocks.cache_end:
        vals[0] = _I64.unpack_from(blocks.cached, address - blocks.cache_start)[0]
    else:
        vals[0] = kernel.load_u64(state, address)


def _raw_store_u64(state: CallState, vals: Any) -> None:
    blocks = state.blocks
    address = vals[0]
    if blocks.cache_start <= address and address + 8 <= blocks.cache_end:
        _I64.pack_into(blocks.cached, address - blocks.cache_start, vals[2])
    else:
        kernel.store_u64(state, address, vals[2])


def _raw_input_load_u8(state: CallState, vals: Any) -> None:
    vals[0] = kernel.input_load_u8(state, vals[0])


def _raw_input_load_u64(state: CallState, vals: Any) -> None:
    vals[0] = kernel.input_load_u64(state, vals[0])


RAW: Final[dict[str, Callable[[CallState, Any], None]]] = {
    "load_u8": _raw_load_u8,
    "store_u8": _raw_store_u8,
    "load_u64": _raw_load_u64,
    "store_u64": _raw_store_u64,
    "input_load_u8": _raw_input_load_u8,
    "input_load_u64": _raw_input_load_u64,
}


def _all() -> dict[tuple[str, str], tuple[wasmtime.FuncType, Any, int, bool, bool]]:
    table = {(kernel.MODULE, n): (list(p), list(r), f, c) for n, (p, r, f, c) in kernel.FUNCTIONS.items()}
    table[kernel.ABORT] = ([kernel.I32] * 4, [], kernel.abort, False)
    return {key: (wasmtime.FuncType(p, r), f, len(p), bool(r), c) for key, (p, r, f, c) in table.items()}


def define(linker: wasmtime.Linker, slot: Slot, *, fast: bool) -> list[Any]:
    """Put every kernel function (and env.abort) into `linker`, each reading its call's state from `slot`:
    raw callbacks (`native.py`) when `fast`, else wasmtime-py's trampolines. Store-independent either way: one
    linker serves every call of its runner. Returns the callbacks, which must live as long as the linker."""
    keep: list[Any] = []
    for (module, name), (ty, func, nparams, has_result, needs_caller) in _all().items():
        if not fast:
            linker.define_func(module, name, ty, _public(func, slot), needs_caller)
            continue
        if module == kernel.MODULE and name in RAW:
            cb = native.raw_callback(RAW[name], slot)
        else:
            cb = native.callback(func, nparams, has_result, needs_caller, slot)
        native.define(linker, module, name, ty, cb)
        keep.append(cb)
    return keep


def _public(func: Callable[..., Any], slot: Slot) -> Callable[..., Any]:
    """A wasmtime-py host function: `func` with the slot's call state first (then the caller, if it takes one)."""
    return lambda *args: func(slot.state, *args)
