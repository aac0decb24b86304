"""Checking a module exactly as a worker would load it (hash, compile, imports, exports) before it is published.

Compiling is untrusted work too (a module can be made to take minutes or gigabytes to compile): the sandbox
compiles in a child process under `WASMQ_COMPILE_TIMEOUT_S` and `WASMQ_COMPILE_MEMORY_MB`
(worker/sandbox/compiler.py), so the check never runs unbounded in the publisher's process either. The check
uses no precompiled cache; it returns the compiled artifact, which the registry may share with workers.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config import Settings
from ..sandbox import Sandbox
from ..spec import ModuleSpec


class _OneModule:
    """A `ModuleSource` of one spec and its bytes."""

    def __init__(self, spec: ModuleSpec, wasm: bytes) -> None:
        self.spec, self.bytes = spec, wasm

    def resolve(self, ref: str) -> ModuleSpec:
        return self.spec

    def wasm(self, spec: ModuleSpec) -> bytes:
        return self.bytes

    def __iter__(self) -> Iterator[ModuleSpec]:
        yield self.spec


def check_module(spec: ModuleSpec, wasm: bytes, settings: Settings | None = None) -> bytes:
    """Load `spec` with these bytes as a worker would, under `settings`' compile limits; its serialized artifact."""
    settings = (settings or Settings()).with_(cache_dir=None)
    with Sandbox(_OneModule(spec, wasm), settings=settings) as sandbox:
        sandbox.load(spec)
        if spec.is_extism:
            return bytes(sandbox.extism.plugin(spec).module.serialize())
        if spec.is_component:
            return bytes(sandbox.components.loader.loaded(spec).component.serialize())
        return bytes(sandbox.core.compiled(spec).module.serialize())
