"""What every backend does before it can run a module: get its bytes, verify them, compile once, remember.

The sandbox never looks modules up itself: it is given a `ModuleSource` (the catalog satisfies it) that
resolves references and hands over bytes. The bytes are checked against the spec's sha256 here, whoever
supplied them, and a module is compiled once per content hash; a rejection is remembered too, so a bad
module fails fast instead of being compiled again by every job.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ..errors import ModuleRejected
from ..spec import ModuleSpec
from .shared import shared_first

if TYPE_CHECKING:
    from .compiler import BoundedCompiler, Kind
    from .precompiled import PrecompiledCache
    from .shared import ArtifactSource

T = TypeVar("T")


class ModuleSource(Protocol):
    """Where specs and bytes come from (worker/catalog/ implements it)."""

    def resolve(self, ref: str) -> ModuleSpec: ...

    def wasm(self, spec: ModuleSpec) -> bytes: ...

    def __iter__(self) -> Iterator[ModuleSpec]: ...


def verified(spec: ModuleSpec, wasm: bytes) -> bytes:
    """`wasm`, refused unless its sha256 is the one the spec was published with."""
    digest = hashlib.sha256(wasm).hexdigest()
    if digest != spec.sha256:
        raise ModuleRejected(f"module {spec.ref}: its bytes have sha256 {digest}, it was registered as {spec.sha256}")
    return wasm


class Remembered(Generic[T]):
    """`load(spec)` once per content hash and ref, thread-safe; a `ModuleRejected` is remembered as well."""

    def __init__(self, load: Callable[[ModuleSpec], T]) -> None:
        self._load = load
        self._found: dict[tuple[str, str], T | ModuleRejected] = {}
        self._lock = threading.Lock()

    def has(self, spec: ModuleSpec) -> bool:
        """Whether `spec` was loaded (or rejected) already, so that calling needs no work."""
        return (spec.sha256, spec.ref) in self._found

    def __call__(self, spec: ModuleSpec) -> T:
        key = (spec.sha256, spec.ref)
        found = self._found.get(key)
        if found is None:
            with self._lock:
                found = self._found.get(key)
                if found is None:
                    try:
                        found = self._load(spec)
                    except ModuleRejected as exc:
                        found = exc
                    self._found[key] = found
        if isinstance(found, ModuleRejected):
            # A fresh error per call: re-raising the cached instance would grow its traceback on every call
            # (keeping each caller's frames alive) and share one details dict between jobs.
            raise ModuleRejected(found.message, dict(found.details))
        return found


def load_compiled(
    spec: ModuleSpec,
    wasm: bytes,
    kind: Kind,
    deserialize: Callable[[bytes], T],
    *,
    precompiled: PrecompiledCache,
    compiler: BoundedCompiler,
    artifacts: ArtifactSource | None,
) -> tuple[T, bool]:
    """The compiled module or component of verified `wasm`, and whether it came from the local cache: the
    local cache first, then a shared artifact, else the bounded compiler (every backend loads this way)."""

    def compile() -> bytes:
        return compiler.compile(wasm, kind=kind, ref=spec.ref).artifact

    return precompiled.load_or_compile(
        spec, compile=shared_first(artifacts, spec, kind, compile=compile, deserialize=deserialize),
        deserialize=deserialize,
    )  # fmt: skip
