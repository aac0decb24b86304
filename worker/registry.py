"""Module registry: sha256-verified, import/export-checked, compiled once per process, cached on disk.

A module is compiled on first use, not at worker start, so one bad entry in a manifest cannot keep a
worker from serving the others; its rejection is remembered (by content hash) and reported per job as
`ModuleRejected`. Compiled modules are kept on disk (worker/precompiled.py), so a fresh worker process
deserializes instead of compiling.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import wasmtime

from .catalog import ModuleCatalog
from .errors import ModuleRejected
from .manifest import ModuleSpec
from .precompiled import PrecompiledCache
from .sandbox import capi
from .sandbox.abi import BATCH_SIGNATURES, NEEDS_MEMORY, REQUIRED_EXPORTS, Signature
from .sandbox.compiler import BoundedCompiler

T = TypeVar("T")
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


class ModuleRegistry:
    """Compiled modules of one Engine, by content hash."""

    def __init__(
        self,
        catalog: ModuleCatalog,
        *,
        engine: wasmtime.Engine,
        linker: wasmtime.Linker,
        cache_dir: Path | None,
        compiler: BoundedCompiler | None = None,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.linker = linker
        self.precompiled = PrecompiledCache(cache_dir)
        self.compiler = compiler or BoundedCompiler()  # compiles in a child process under limits
        self._compiled: dict[tuple[str, str], CompiledModule | ModuleRejected] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> ModuleSpec:
        return self.catalog.resolve(ref)

    def ready(self, spec: ModuleSpec) -> bool:
        """Whether `compiled(spec)` needs no compiling: loaded (or rejected) already, or authentic on disk."""
        return (spec.sha256, spec.ref) in self._compiled or self.precompiled.has(spec)

    def compiled(self, spec: ModuleSpec) -> CompiledModule:
        """The compiled module for `spec`, or `ModuleRejected` (remembered, so a bad module fails fast)."""
        return remembered(self._compiled, self._lock, spec, self._load)

    # -- loading ---------------------------------------------------------------------------------------

    def _load(self, spec: ModuleSpec) -> CompiledModule:
        wasm = read_verified(spec)
        module, from_cache = self._compile(spec, wasm)
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

    def _compile(self, spec: ModuleSpec, wasm: bytes) -> tuple[wasmtime.Module, bool]:
        return self.precompiled.load_or_compile(
            spec,
            compile=lambda: self.compiler.compile(wasm, kind="module", ref=spec.ref).artifact,
            deserialize=lambda data: wasmtime.Module.deserialize(self.engine, data),
        )


def remembered(
    cache: dict[tuple[str, str], T | ModuleRejected],
    lock: threading.Lock,
    spec: ModuleSpec,
    load: Callable[[ModuleSpec], T],
) -> T:
    """`load(spec)` once per content hash and ref; a rejection is remembered too, so a bad module fails fast."""
    key = (spec.sha256, spec.ref)
    found = cache.get(key)
    if found is None:
        with lock:
            found = cache.get(key)
            if found is None:
                try:
                    found = load(spec)
                except ModuleRejected as exc:
                    found = exc
                cache[key] = found
    if isinstance(found, ModuleRejected):
        # A fresh error per call: re-raising the cached instance would grow its traceback on every call
        # (keeping each caller's frames alive) and share one details dict between jobs.
        raise ModuleRejected(found.message, dict(found.details))
    return found


def read_verified(spec: ModuleSpec) -> bytes:
    """The module's bytes, refused unless their sha256 is the manifest's."""
    try:
        wasm = spec.path.read_bytes()
    except OSError as exc:
        raise ModuleRejected(f"module {spec.ref}: cannot read {spec.path.name}: {exc.strerror}") from None
    digest = hashlib.sha256(wasm).hexdigest()
    if digest != spec.sha256:
        raise ModuleRejected(
            f"module {spec.ref}: sha256 of {spec.path.name} is {digest}, the manifest says {spec.sha256}"
        )
    return wasm


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
