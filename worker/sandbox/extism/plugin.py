"""Loading an Extism plugin: which compiled modules the kernel host accepts, checked before any call.

A plugin may import only the kernel (`extism:host/env`, with Extism's signatures), WASI preview 1 (linked with
nothing granted: Extism's Rust, Go and C PDKs build for wasm32-wasi) and AssemblyScript's `env.abort` (which
Extism itself does not provide; here it ends the call with the plugin's message). Its memory must be exported as
`memory` and every function to be called must be `() -> i32` (the return code) or `() -> ()`, the two shapes
Extism calls. A reactor's `_initialize` (or `__wasm_call_ctors`), if exported as `() -> ()`, runs after
instantiation, as in Extism.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast

import wasmtime

from ...errors import ModuleRejected
from . import kernel

WASI_MODULE: Final = "wasi_snapshot_preview1"
_ABORT_TYPE: Final = (("i32",) * 4, ())
_CALLABLE: Final = ((), ("i32",))
_NO_RC: Final = ((), ())
_INITIALIZERS: Final = ("_initialize", "__wasm_call_ctors")


@dataclass(frozen=True, eq=False)
class ExtismPlugin:
    """A compiled module that passed the checks; `returns_rc` per checked function."""

    ref: str
    module: wasmtime.Module
    returns_rc: dict[str, bool]
    needs_wasi: bool
    initializer: str | None
    kernel_imports: frozenset[str] = frozenset()  # the kernel functions it imports (kernel.kernel_module)


def _types(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(t) for t in ty.params), tuple(str(t) for t in ty.results)


def _fmt(types: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return f"({', '.join(types[0])}) -> ({', '.join(types[1])})"


def check_plugin(module: wasmtime.Module, *, ref: str, functions: Iterable[str]) -> ExtismPlugin:
    """Refuse (`ModuleRejected`) a module the kernel host cannot run, before it is ever instantiated."""
    needs_wasi = False
    for imp in module.imports:
        where = f"module {ref}: import {imp.module}.{imp.name}"
        if imp.module == WASI_MODULE:
            needs_wasi = True
            continue
        if not isinstance(imp.type, wasmtime.FuncType):
            raise ModuleRejected(f"{where} is a {type(imp.type).__name__}; Extism plugins import only functions")
        actual = _types(imp.type)
        if imp.module == kernel.MODULE:
            expected = kernel.signature(imp.name or "")
            if expected is None:
                raise ModuleRejected(f"{where}: the Extism kernel has no such function")
        elif (imp.module, imp.name) == kernel.ABORT:
            expected = _ABORT_TYPE
        else:
            raise ModuleRejected(f"{where}: Extism plugins may import only {kernel.MODULE}, {WASI_MODULE}, env.abort")
        if actual != expected:
            raise ModuleRejected(f"{where} is {_fmt(actual)}, the host provides {_fmt(expected)}")
    exports = {exp.name: exp.type for exp in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise ModuleRejected(f"module {ref} exports no memory named 'memory'")
    returns_rc: dict[str, bool] = {}
    for name in functions:
        ty = exports.get(name)
        if not isinstance(ty, wasmtime.FuncType):
            raise ModuleRejected(f"module {ref} exports no function {name!r}")
        types = _types(ty)
        if types not in (_CALLABLE, _NO_RC):
            raise ModuleRejected(f"module {ref}: {name!r} is {_fmt(types)}; Extism exports are () -> (i32) or () -> ()")
        returns_rc[name] = types == _CALLABLE
    initializer = next(
        (n for n in _INITIALIZERS if isinstance(exports.get(n), wasmtime.FuncType)
         and _types(cast(wasmtime.FuncType, exports[n])) == _NO_RC),
        None,
    )  # fmt: skip
    kernel_imports = frozenset(imp.name or "" for imp in module.imports if imp.module == kernel.MODULE)
    return ExtismPlugin(
        ref=ref, module=module, returns_rc=returns_rc, needs_wasi=needs_wasi, initializer=initializer,
        kernel_imports=kernel_imports,
    )  # fmt: skip


def load_plugin(engine: wasmtime.Engine, wasm: bytes, *, ref: str, functions: Iterable[str]) -> ExtismPlugin:
    """Compile and check in one step (the worker compiles untrusted bytes in a bounded subprocess instead)."""
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise ModuleRejected(f"module {ref} is not a valid WebAssembly module: {str(exc).splitlines()[0]}") from None
    return check_plugin(module, ref=ref, functions=functions)
