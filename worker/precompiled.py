"""Precompiled artifacts on disk: a module or component is compiled once per machine, and every fresh worker
process deserializes it instead (a fraction of a millisecond instead of several).

Artifacts are keyed by the wasm's sha256, its kind and the engine fingerprint (wasmtime version and engine
settings), so a changed module, a wasmtime upgrade or a changed engine setting never loads a stale one; a
damaged artifact is compiled again and overwritten. The cache directory must be writable by the worker only:
deserializing an artifact runs it as native code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import wasmtime

from .errors import ModuleRejected
from .manifest import ModuleSpec
from .sandbox.engine import engine_fingerprint

T = TypeVar("T")


class PrecompiledCache:
    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self._tag = hashlib.sha256(engine_fingerprint().encode()).hexdigest()[:16]

    def path(self, spec: ModuleSpec) -> Path | None:
        """Where `spec`'s artifact is (or would be) kept; None without a cache directory."""
        if self.cache_dir is None:
            return None
        suffix = ".component.cwasm" if spec.abi == "component" else ".cwasm"
        return self.cache_dir / f"{spec.sha256}-{self._tag}{suffix}"

    def load_or_compile(
        self, spec: ModuleSpec, *, compile: Callable[[], bytes], deserialize: Callable[[bytes], T]
    ) -> tuple[T, bool]:
        """The compiled artifact, and whether it came from the cache. `compile` returns serialized bytes (of the
        bounded compiler, worker/sandbox/compiler.py) and raises `ModuleRejected` for bad wasm."""
        artifact = self.path(spec)
        if artifact is not None and artifact.exists():
            try:
                return deserialize(artifact.read_bytes()), True
            except (OSError, wasmtime.WasmtimeError):
                pass  # stale or damaged artifact: compile again and overwrite it
        serialized = compile()
        try:
            compiled = deserialize(serialized)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(f"module {spec.ref}: its compiled artifact cannot be loaded: {exc}") from None
        if artifact is not None:
            _write_atomically(artifact, serialized)
        return compiled, False


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a concurrent reader never sees half an artifact."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation: a read-only or full disk must not fail the job
