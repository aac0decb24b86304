"""Which modules exist: name and version lookup over one or more manifests, without compiling anything.

Producers use it to refuse an unknown module before enqueueing; a worker's sandbox is handed it as its
`ModuleSource` (specs and bytes).
A catalog built from manifest files notices when they change (checked at most once per `RELOAD_CHECK_S`),
so a version published with `wasmq modules add` is served without restarting any worker; compiled
modules are cached by content hash, so nothing already compiled is compiled again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConfigError, ModuleNotFound, ModuleRejected
from ..spec import ModuleSpec, version_key
from .manifest import load_manifest

RELOAD_CHECK_S = 1.0


def _index(specs: Iterable[ModuleSpec]) -> dict[str, list[ModuleSpec]]:
    by_name: dict[str, list[ModuleSpec]] = {}
    for spec in specs:
        by_name.setdefault(spec.name, []).append(spec)
    for versions in by_name.values():
        versions.sort(key=lambda s: version_key(s.version), reverse=True)
    return by_name


def _signature(paths: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((-1, -1))
    return tuple(out)


class ModuleCatalog:
    """Module specs by name, newest version first; `resolve('name')` or `resolve('name@version')`."""

    def __init__(self, specs: Iterable[ModuleSpec], *, manifests: Iterable[Path] = ()) -> None:
        self._by_name = _index(specs)
        self._manifests = tuple(Path(p) for p in manifests)
        self._seen = _signature(self._manifests)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def from_manifests(cls, paths: Iterable[Path]) -> ModuleCatalog:
        paths = tuple(Path(p) for p in paths)
        return cls(cls._load(paths), manifests=paths)

    @staticmethod
    def _load(paths: tuple[Path, ...]) -> list[ModuleSpec]:
        specs: list[ModuleSpec] = []
        for path in paths:
            specs.extend(load_manifest(path))
        return specs

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the manifests if they changed; True when the catalog changed. A manifest that became
        unreadable or invalid keeps the last good catalog (a half-finished edit must not stop service)."""
        if not self._manifests or (not force and time.monotonic() - self._checked < RELOAD_CHECK_S):
            return False
        with self._lock:
            self._checked = time.monotonic()
            seen = _signature(self._manifests)
            if seen == self._seen and not force:
                return False
            try:
                self._by_name = _index(self._load(self._manifests))
            except ConfigError:
                return False
            self._seen = seen
            return True

    def resolve(self, ref: str) -> ModuleSpec:
        """The spec for `name` (newest version) or `name@version`; `ModuleNotFound` names what exists."""
        if not isinstance(ref, str) or not ref:
            raise ModuleNotFound(f"module reference must be a non-empty string, not {ref!r}")
        self.refresh()
        name, at, version = ref.partition("@")
        versions = self._by_name.get(name)
        if not versions:
            raise ModuleNotFound(f"no module named {name!r}; registered: {sorted(self._by_name) or 'none'}")
        if not at:
            return versions[0]
        for spec in versions:
            if spec.version == version:
                return spec
        known = [s.version for s in versions]
        raise ModuleNotFound(f"module {name!r} has no version {version!r}; registered versions: {known}")

    def wasm(self, spec: ModuleSpec) -> bytes:
        """The module's bytes as published (the sandbox verifies their sha256 before compiling them)."""
        try:
            return spec.path.read_bytes()
        except OSError as exc:
            raise ModuleRejected(f"module {spec.ref}: cannot read {spec.path.name}: {exc.strerror}") from None

    def __iter__(self) -> Iterator[ModuleSpec]:
        for versions in list(self._by_name.values()):
            yield from versions

    def names(self) -> list[str]:
        return sorted(self._by_name)
