"""Precompiled artifacts shared across hosts: on a local cache miss, an artifact another machine compiled for
this same engine is deserialized instead of compiling the module again.

One bounded piece on purpose, separate from the local cache (worker/sandbox/precompiled.py): it only wraps the
`compile` step the loaders hand to `PrecompiledCache.load_or_compile`, so whatever the local cache does with
the result (write it, authenticate it) applies unchanged. An artifact is native code: the `ArtifactSource`
must hand over only bytes it can vouch for (worker/catalog/artifacts.py: written only by a registry
publisher, checked against the sha256 recorded with it). One that this engine refuses (another wasmtime, CPU
features this host lacks, damage) is ignored and the module compiled here, as without sharing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import wasmtime

from ..spec import ModuleSpec
from .engine import engine_fingerprint

T = TypeVar("T")
log = logging.getLogger("wasmq.sandbox")


class ArtifactSource(Protocol):
    """Where shared artifacts come from: the artifact of `spec` compiled by an engine with `fingerprint`."""

    def artifact(self, spec: ModuleSpec, kind: str, fingerprint: str) -> bytes | None: ...


def shared_first(
    source: ArtifactSource | None,
    spec: ModuleSpec,
    kind: str,
    *,
    compile: Callable[[], bytes],
    deserialize: Callable[[bytes], T],
) -> Callable[[], bytes]:
    """A `compile` step (serialized artifact bytes) that first tries the shared artifact of `spec` (kind
    `module` or `component`), kept only if this engine can load it."""
    if source is None:
        return compile

    def shared_or_compile() -> bytes:
        data = source.artifact(spec, kind, engine_fingerprint())
        if data is not None:
            try:
                deserialize(data)
                return data
            except wasmtime.WasmtimeError as exc:
                log.warning("shared artifact of %s refused by this engine, compiling: %s", spec.ref, exc)
        return compile()

    return shared_or_compile
