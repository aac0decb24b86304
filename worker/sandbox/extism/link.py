"""Linking the host's part of the kernel (host.py) into a runner's linkers.

Two linkers per runner: the kernel's (kernel.wat imports `wasmq:kernel` from it: config, vars, logs, http) and
the plugin's (WASI with nothing granted, AssemblyScript's `env.abort`, and, per call, the kernel instance's
exports as `extism:host/env`). On the native path (`native.py`) each host function becomes a raw C callback,
on the public path a wasmtime-py host function; either way it reads its call's state from the runner's `Slot`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime

from . import host, kernel, native
from .state import Slot


def define(kernel_linker: wasmtime.Linker, plugin_linker: wasmtime.Linker, slot: Slot, *, fast: bool) -> list[Any]:
    """Put the host functions into `kernel_linker` and env.abort into `plugin_linker`, each reading its call's
    state from `slot`: raw callbacks when `fast`, else wasmtime-py's trampolines. Store-independent either way.
    Returns the callbacks, which must live as long as the linkers."""
    table = [((kernel.HOST_MODULE, name), entry, kernel_linker) for name, entry in host.FUNCTIONS.items()]
    table.append((kernel.ABORT, host.ABORT_FUNCTION, plugin_linker))
    keep: list[Any] = []
    for (module, name), (params, results, func, needs_caller), linker in table:
        ty = wasmtime.FuncType(list(params), list(results))
        if not fast:
            linker.define_func(module, name, ty, _public(func, slot), needs_caller)
            continue
        cb = native.callback(func, len(params), bool(results), needs_caller, slot)
        native.define(linker, module, name, ty, cb)
        keep.append(cb)
    return keep


def _public(func: Callable[..., Any], slot: Slot) -> Callable[..., Any]:
    """A wasmtime-py host function: `func` with the slot's call state first (then the caller, if it takes one)."""
    return lambda *args: func(slot.state, *args)
