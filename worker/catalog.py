"""Which modules exist: name and version lookup over one or more manifests, without compiling anything.

Producers use it to refuse an unknown module before enqueueing; workers build a `ModuleRegistry` on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import ModuleNotFound
from .manifest import ModuleSpec, load_manifest, version_key


class ModuleCatalog:
    """Module specs by name, newest version first; `resolve('name')` or `resolve('name@version')`."""

    def __init__(self, specs: Iterable[ModuleSpec]) -> None:
        self._by_name: dict[str, list[ModuleSpec]] = {}
        for spec in specs:
            self._by_name.setdefault(spec.name, []).append(spec)
        for versions in self._by_name.values():
            versions.sort(key=lambda s: version_key(s.version), reverse=True)

    @classmethod
    def from_manifests(cls, paths: Iterable[Path]) -> ModuleCatalog:
        specs: list[ModuleSpec] = []
        for path in paths:
            specs.extend(load_manifest(Path(path)))
        return cls(specs)

    def resolve(self, ref: str) -> ModuleSpec:
        """The spec for `name` (newest version) or `name@version`; `ModuleNotFound` names what exists."""
        if not isinstance(ref, str) or not ref:
            raise ModuleNotFound(f"module reference must be a non-empty string, not {ref!r}")
        name, _, version = ref.partition("@")
        versions = self._by_name.get(name)
        if not versions:
            raise ModuleNotFound(f"no module named {name!r}; registered: {sorted(self._by_name) or 'none'}")
        if not version:
            return versions[0]
        for spec in versions:
            if spec.version == version:
                return spec
        known = [s.version for s in versions]
        raise ModuleNotFound(f"module {name!r} has no version {version!r}; registered versions: {known}")

    def __iter__(self):  # type: ignore[no-untyped-def]
        for versions in self._by_name.values():
            yield from versions

    def names(self) -> list[str]:
        return sorted(self._by_name)
