"""The seed: module specs from local manifest files, read-only, re-read when a file changes.

For images with modules baked in and for air-gapped hosts (`WASMQ_MANIFEST`; empty for none). A changed
manifest is noticed within `RELOAD_CHECK_S` without a restart; a manifest that became unreadable or invalid
keeps the last good seed (a half-finished edit must not stop service).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConfigError
from ..spec import ModuleSpec, version_key
from .manifest import load_manifest

RELOAD_CHECK_S = 1.0


def _index(specs: Iterable[ModuleSpec]) -> dict[str, dict[str, ModuleSpec]]:
    by_name: dict[str, dict[str, ModuleSpec]] = {}
    for spec in specs:
        by_name.setdefault(spec.name, {})[spec.version] = spec
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


class Seeds:
    """Specs by name and version, from `specs` given directly and from the `manifests` files."""

    def __init__(self, specs: Iterable[ModuleSpec] = (), *, manifests: Iterable[Path] = ()) -> None:
        self.manifests = tuple(Path(p) for p in manifests)
        self._given = list(specs)
        self._origin: dict[str, Path] = {}
        self._by_name = _index([*self._given, *self._load()])
        self._seen = _signature(self.manifests)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _load(self) -> list[ModuleSpec]:
        specs, origin = [], {}
        for path in self.manifests:
            for spec in load_manifest(path):
                specs.append(spec)
                origin[spec.ref] = path
        self._origin = origin
        return specs

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the manifests if they changed; True when the seed changed."""
        if not self.manifests or (not force and time.monotonic() - self._checked < RELOAD_CHECK_S):
            return False
        with self._lock:
            self._checked = time.monotonic()
            seen = _signature(self.manifests)
            if seen == self._seen and not force:
                return False
            try:
                self._by_name = _index([*self._given, *self._load()])
            except ConfigError:
                return False
            self._seen = seen
            return True

    def versions(self, name: str) -> dict[str, ModuleSpec]:
        self.refresh()
        return self._by_name.get(name, {})

    def where(self, spec: ModuleSpec) -> str:
        """Which seed file holds `spec` (for messages)."""
        path = self._origin.get(spec.ref)
        return f"seed manifest {path}" if path is not None else "seed"

    def names(self) -> list[str]:
        self.refresh()
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[ModuleSpec]:
        self.refresh()
        for versions in list(self._by_name.values()):
            yield from sorted(versions.values(), key=lambda s: version_key(s.version), reverse=True)
