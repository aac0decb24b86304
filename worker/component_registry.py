"""Components by content hash: sha256-verified, checked against their WIT world, compiled once per process.

The component counterpart of `worker/registry.py` (core modules); a rejection is remembered and reported per
job as `ModuleRejected`, so one bad component cannot keep a worker from serving the rest.
"""

from __future__ import annotations

import hashlib
import threading

import wasmtime

from .errors import ConfigError, ModuleRejected
from .manifest import ModuleSpec
from .sandbox.component import LoadedComponent, load_component
from .sandbox.wit import load_world


class ComponentRegistry:
    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self._loaded: dict[tuple[str, str], LoadedComponent | ModuleRejected] = {}
        self._lock = threading.Lock()

    def loaded(self, spec: ModuleSpec) -> LoadedComponent:
        key = (spec.sha256, spec.ref)
        with self._lock:
            found = self._loaded.get(key)
            if found is None:
                try:
                    found = self._load(spec)
                except ModuleRejected as exc:
                    found = exc
                self._loaded[key] = found
        if isinstance(found, ModuleRejected):
            raise ModuleRejected(found.message, dict(found.details))
        return found

    def _load(self, spec: ModuleSpec) -> LoadedComponent:
        if spec.wit is None or spec.world is None:
            raise ModuleRejected(f"module {spec.ref}: a component needs 'wit' and 'world' in its manifest entry")
        try:
            wasm = spec.path.read_bytes()
        except OSError as exc:
            raise ModuleRejected(f"module {spec.ref}: cannot read {spec.path.name}: {exc.strerror}") from None
        digest = hashlib.sha256(wasm).hexdigest()
        if digest != spec.sha256:
            raise ModuleRejected(
                f"module {spec.ref}: sha256 of {spec.path.name} is {digest}, the manifest says {spec.sha256}"
            )
        try:
            world = load_world(spec.wit, spec.world)
        except ConfigError as exc:
            raise ModuleRejected(f"module {spec.ref}: {exc.message}") from None
        return load_component(self.engine, wasm, ref=spec.ref, world=world, functions=list(spec.functions))
