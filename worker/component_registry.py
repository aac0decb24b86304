"""Components by content hash: sha256-verified, checked against their WIT world, compiled once per process.

The component counterpart of `worker/registry.py` (core modules); a rejection is remembered and reported per
job as `ModuleRejected`, so one bad component cannot keep a worker from serving the rest. Compiled components
are kept on disk like modules (worker/precompiled.py); the WIT check runs on every load.
"""

from __future__ import annotations

import threading
from pathlib import Path

import wasmtime
import wasmtime.component as wc

from .errors import ConfigError, ModuleRejected
from .manifest import ModuleSpec
from .precompiled import PrecompiledCache
from .registry import read_verified, remembered
from .sandbox.compiler import BoundedCompiler
from .sandbox.component import LoadedComponent, check_component
from .sandbox.wit import load_world


class ComponentRegistry:
    def __init__(
        self, engine: wasmtime.Engine, *, cache_dir: Path | None = None, compiler: BoundedCompiler | None = None
    ) -> None:
        self.engine = engine
        self.precompiled = PrecompiledCache(cache_dir)
        self.compiler = compiler or BoundedCompiler()  # compiles in a child process under limits
        self._loaded: dict[tuple[str, str], LoadedComponent | ModuleRejected] = {}
        self._lock = threading.Lock()

    def ready(self, spec: ModuleSpec) -> bool:
        """Whether `loaded(spec)` needs no compiling: loaded (or rejected) already, or authentic on disk."""
        return (spec.sha256, spec.ref) in self._loaded or self.precompiled.has(spec)

    def loaded(self, spec: ModuleSpec) -> LoadedComponent:
        return remembered(self._loaded, self._lock, spec, self._load)

    def _load(self, spec: ModuleSpec) -> LoadedComponent:
        if spec.wit is None or spec.world is None:
            raise ModuleRejected(f"module {spec.ref}: a component needs 'wit' and 'world' in its manifest entry")
        wasm = read_verified(spec)
        try:
            world = load_world(spec.wit, spec.world)
        except ConfigError as exc:
            raise ModuleRejected(f"module {spec.ref}: {exc.message}") from None
        component, _ = self.precompiled.load_or_compile(
            spec,
            compile=lambda: self.compiler.compile(wasm, kind="component", ref=spec.ref).artifact,
            deserialize=lambda data: wc.Component.deserialize(self.engine, data),
        )
        return check_component(self.engine, component, ref=spec.ref, world=world, functions=list(spec.functions))
