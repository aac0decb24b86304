"""Core modules: import- and export-checked against their ABI, compiled once per process, cached on disk.

A module is compiled on first use, not at worker start, so one bad entry cannot keep a worker from serving
the others; its rejection is remembered (by content hash) and reported per job as `ModuleRejected`. Compiled
modules are kept on disk (worker/sandbox/precompiled.py), so a fresh worker process deserializes instead of
compiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from ...errors import ModuleRejected
from ...spec import ModuleSpec
from .. import capi
from ..compiler import BoundedCompiler
from ..loading import Remembered, load_compiled, verified
from ..precompiled import PrecompiledCache
from ..shared import ArtifactSource
from .abi import BATCH_SIGNATURES, NEEDS_MEMORY, REQUIRED_EXPORTS, Signature

ALLOWED_IMPORT_MODULES = ("wasi_snapshot_preview1",)


@dataclass(frozen=True)
class CompiledModule:
    """A verified module ready to instantiate: one `InstancePre` shared by every call."""

    spec: ModuleSpec
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    needs_wasi: bool
    has_initialize: bool
    from_cache: bool
    # Every function export's checked (params, results), and the InstancePre's native address: what the
    # C-API hot path (worker/sandbox/capi.py) needs to call exports without asking wasmtime for their types.
    signatures: dict[str, Signature] = field(default_factory=dict)
    pre_address: int = 0


class CoreLoader:
    """Compiled core modules of one Engine, by content hash; `fetch(spec)` supplies a module's bytes."""

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        linker: wasmtime.Linker,
        precompiled: PrecompiledCache,
        compiler: BoundedCompiler,
        fetch: Callable[[ModuleSpec], bytes],
        artifacts: ArtifactSource | None = None,
    ) -> None:
        self.engine = engine
        self.linker = linker
        self.precompiled = precompiled
        self.compiler = compiler  # compiles in a child process under limits (worker/sandbox/compiler.py)
        self.fetch = fetch
        self.artifacts = artifacts
        self.compiled = Remembered(self._load)

    def ready(self, spec: ModuleSpec) -> bool:
        """Whether `compiled(spec)` needs no compiling: loaded (or rejected) already, or authentic on disk."""
        return self.compiled.has(spec) or self.precompiled.has(spec)

    def _load(self, spec: ModuleSpec) -> CompiledModule:
        wasm = verified(spec, self.fetch(spec))
        module, from_cache = load_compiled(
            spec, wasm, "module", lambda data: wasmtime.Module.deserialize(self.engine, data),
            precompiled=self.precompiled, compiler=self.compiler, artifacts=self.artifacts,
        )  # fmt: skip
        check_imports(spec, module)
        exports = check_exports(spec, module)
        try:
            pre = self.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(f"module {spec.ref} cannot be linked: {str(exc).splitlines()[0]}") from None
        return CompiledModule(
            spec=spec,
            module=module,
            pre=pre,
            needs_wasi=any(True for _ in module.imports),
            has_initialize=_is_reactor_init(exports.get("_initialize")),
            from_cache=from_cache,
            signatures={name: _signature(t) for name, t in exports.items() if isinstance(t, wasmtime.FuncType)},
            pre_address=capi.address(pre) if capi.AVAILABLE else 0,
        )


def check_imports(spec: ModuleSpec, module: wasmtime.Module) -> None:
    """Only WASI functions may be imported (and they are linked with nothing granted)."""
    for imp in module.imports:
        if imp.module not in ALLOWED_IMPORT_MODULES or not isinstance(imp.type, wasmtime.FuncType):
            raise ModuleRejected(
                f"module {spec.ref} imports {imp.module}.{imp.name}; only WASI functions "
                f"({', '.join(ALLOWED_IMPORT_MODULES)}) may be imported"
            )


def _signature(func_type: wasmtime.FuncType) -> Signature:
    return tuple(str(p) for p in func_type.params), tuple(str(r) for r in func_type.results)


def _fmt(sig: Signature) -> str:
    return f"({', '.join(sig[0])}) -> ({', '.join(sig[1])})"


def _is_reactor_init(export: object) -> bool:
    """A WASI reactor's `_initialize: () -> ()`, which must run before any other export."""
    return isinstance(export, wasmtime.FuncType) and _signature(export) == ((), ())


def check_exports(spec: ModuleSpec, module: wasmtime.Module) -> dict[str, object]:
    """Every declared function, and the helpers its ABI needs, must be exported with the right signature."""
    exports: dict[str, object] = {e.name: e.type for e in module.exports}

    def need(name: str, options: tuple[Signature, ...], why: str) -> None:
        found = exports.get(name)
        if found is None:
            raise ModuleRejected(f"module {spec.ref} does not export {name!r} ({why})")
        if not isinstance(found, wasmtime.FuncType):
            raise ModuleRejected(f"module {spec.ref}: export {name!r} is not a function ({why})")
        if _signature(found) not in options:
            raise ModuleRejected(
                f"module {spec.ref}: export {name!r} has signature {_fmt(_signature(found))}, "
                f"{why} needs {' or '.join(_fmt(o) for o in options)}"
            )

    for fspec in spec.functions.values():
        for name, sig in REQUIRED_EXPORTS[fspec.abi].items():
            need(name.replace("{F}", fspec.name), sig, f"ABI {fspec.abi} of {fspec.name}")
        if fspec.batch:
            need(fspec.batch, BATCH_SIGNATURES, f"batch export of {fspec.name}")
        if fspec.abi in NEEDS_MEMORY and not isinstance(exports.get("memory"), wasmtime.MemoryType):
            raise ModuleRejected(f"module {spec.ref} does not export a memory named 'memory' (ABI {fspec.abi})")
    return exports
