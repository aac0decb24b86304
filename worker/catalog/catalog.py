"""Which modules exist: the shared registry and the local seed manifests, behind one lookup.

Producers use it to refuse an unknown module before enqueueing; a worker's sandbox is handed it as its
`ModuleSource` (specs and bytes). Registry entries are cached per name and marked stale when a change
notice or the revision poll says so (worker/catalog/watch.py); a miss always asks the registry again, so a
version published a moment ago is found by the first job that names it.

When the registry and a seed manifest both name one `name@version`:
- a yank in the registry withdraws it, seed or not;
- the same publication (bytes, functions, limits, capabilities, WIT) in both is served, its bytes read from
  the seed's file (no fetch);
- other content is `ModuleRejected` for that version, naming both and what differs: never a silent choice.
When the registry cannot be reached, what is cached and what the seeds hold is still served (a yank made
meanwhile is seen once it is back); anything else is `RegistryUnavailable`, which is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Settings
from ..errors import ModuleNotFound, ModuleRejected, RegistryUnavailable, WasmqError
from ..spec import ModuleSpec, version_key
from .artifacts import SharedArtifacts
from .entry import differences, valid_name
from .registry import Entry, Registry, Stored
from .seeds import RELOAD_CHECK_S, Seeds
from .watch import EVERYTHING, ChangeWatch

log = logging.getLogger("wasmq.catalog")
MAX_CACHED_NAMES = 10_000  # registry names cached per process (the oldest is dropped first)
SHOWN_VERSIONS = 5  # versions named in a "no such version" message


@dataclass(frozen=True)
class Listed:
    """One `name@version` as `wasmq modules list/show/verify` see it."""

    spec: ModuleSpec
    origin: str  # "registry", "seed manifest PATH", or "registry + seed manifest PATH"
    entry: Entry | None  # the registry's entry, if it has one
    problem: WasmqError | None  # what a job for it gets instead of being served (yank, conflict)


class ModuleCatalog:
    """Module specs by name, newest version first; `resolve('name')` or `resolve('name@version')`."""

    def __init__(
        self,
        specs: Iterable[ModuleSpec] = (),
        *,
        manifests: Iterable[Path] = (),
        registry: Registry | None = None,
        poll_s: float = RELOAD_CHECK_S,
    ) -> None:
        self.seeds = Seeds(specs, manifests=manifests)
        self.registry = registry
        self.poll_s = poll_s
        self._watch = ChangeWatch(registry, poll_s=poll_s) if registry is not None else None
        self._cache: dict[str, dict[str, Stored]] = {}
        self._stale: set[str] = set()
        self._down_until = 0.0
        self._lock = threading.RLock()

    @classmethod
    def from_manifests(cls, paths: Iterable[Path]) -> ModuleCatalog:
        return cls(manifests=paths)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModuleCatalog:
        """The seed manifests and the shared registry these settings name: what workers and producers use."""
        registry = Registry.for_settings(settings)
        return cls(manifests=settings.manifests, registry=registry, poll_s=settings.registry_poll_s)

    @property
    def artifacts(self) -> SharedArtifacts | None:
        """Precompiled artifacts shared through the registry (handed to the sandbox only if enabled)."""
        return SharedArtifacts(self.registry) if self.registry is not None else None

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        if self.registry is not None:
            self.registry.close()

    # -- lookup ---------------------------------------------------------------------------------------

    def resolve(self, ref: str) -> ModuleSpec:
        """The spec for `name` (newest version not yanked) or `name@version`."""
        if not isinstance(ref, str) or not ref:
            raise ModuleNotFound(f"module reference must be a non-empty string, not {ref!r:.80}")
        name, at, version = ref.partition("@")
        if not valid_name(name):  # no module has such a name: not worth asking Redis about
            raise ModuleNotFound(f"no module named {name!r:.200}: a name is letters, digits, '.', '_' or '-'")
        stored = self._stored(name, version if at else None)
        seeds = self.seeds.versions(name)
        if at:
            return self._pick(name, version, stored, seeds)
        for candidate in sorted(set(stored) | set(seeds), key=version_key, reverse=True):
            found = stored.get(candidate)
            if not (isinstance(found, Entry) and found.yanked):
                return self._pick(name, candidate, stored, seeds)
        if stored:
            raise ModuleNotFound(f"every version of module {name!r} is yanked")
        raise ModuleNotFound(f"no module named {name!r:.200}")

    def _pick(self, name: str, version: str, stored: dict[str, Stored], seeds: dict[str, ModuleSpec]) -> ModuleSpec:
        found, seed = stored.get(version), seeds.get(version)
        if isinstance(found, ModuleRejected):
            raise ModuleRejected(found.message, dict(found.details))
        if found is None and seed is None:
            servable = [v for v in set(stored) | set(seeds) if not _yanked(stored.get(v))]
            newest = sorted(servable, key=version_key, reverse=True)[:SHOWN_VERSIONS]
            hint = f"; its newest versions: {newest}" if newest else ""
            raise ModuleNotFound(f"module {name!r} has no version {version!r:.80}{hint}")
        if found is not None and found.yanked is not None:
            raise ModuleNotFound(f"module {name}@{version} was {found.yanked.describe()}")
        if found is None:
            assert seed is not None
            return seed
        if seed is None:
            return found.spec
        differ = differences(found.spec, seed)
        if differ:
            raise ModuleRejected(
                f"module {name}@{version} is published in the registry and in {self.seeds.where(seed)} with other "
                f"content ({'; '.join(differ)}); refusing to choose: fix the seed or publish a new version"
            )
        return replace(found.spec, path=seed.path)  # the same publication: its bytes from the local file

    def _stored(self, name: str, version: str | None) -> dict[str, Stored]:
        """The registry's versions of `name`: cached, or read again when stale or when the cache misses."""
        if self.registry is None:
            return {}
        with self._lock:
            self._apply_changes()
            cached = self._cache.get(name)
            if (
                cached is not None
                and name not in self._stale
                and (_hit(cached, version) or self._seeded(name, version))
            ):
                return cached
            if time.monotonic() < self._down_until:
                return self._fallback(name, cached, None)
            try:
                versions = self.registry.versions(name)
            except RegistryUnavailable as exc:
                self._down_until = time.monotonic() + self.poll_s
                return self._fallback(name, cached, exc)
            self._stale.discard(name)
            self._cache.pop(name, None)
            if versions or self.seeds.versions(name):  # a name nobody knows is not cached: asked again next time
                while len(self._cache) >= MAX_CACHED_NAMES:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[name] = versions
            return versions

    def _seeded(self, name: str, version: str | None) -> bool:
        seeds = self.seeds.versions(name)
        return bool(seeds) if version is None else version in seeds

    def _fallback(
        self, name: str, cached: dict[str, Stored] | None, exc: RegistryUnavailable | None
    ) -> dict[str, Stored]:
        """The registry is unreachable: what was cached, else nothing if the seeds know `name`."""
        if cached is not None or self.seeds.versions(name):
            if exc is not None:
                log.warning("module registry unreachable, serving cached and seeded modules: %s", exc.message)
            return cached or {}
        raise exc or RegistryUnavailable(f"module registry unreachable (looking again within {self.poll_s:g} s)")

    def _apply_changes(self) -> None:
        assert self._watch is not None
        changed = self._watch.changes()
        if changed is EVERYTHING:
            self._stale = set(self._cache)
        else:
            self._stale |= changed & set(self._cache)

    def wasm(self, spec: ModuleSpec) -> bytes:
        """The module's bytes as published (the sandbox verifies their sha256 before compiling them)."""
        if spec.path is not None:
            try:
                return spec.path.read_bytes()
            except OSError as exc:
                raise ModuleRejected(f"module {spec.ref}: cannot read {spec.path.name}: {exc.strerror}") from None
        if self.registry is None:
            raise ModuleRejected(f"module {spec.ref}: no file and no registry to fetch its bytes from")
        return self.registry.blob(spec)

    # -- everything ------------------------------------------------------------------------------------

    def listing(self, name: str | None = None) -> list[Listed]:
        """Every version (yanked and conflicting ones too, with the reason), newest first per name."""
        if self.registry is None:
            everything: dict[str, dict[str, Stored]] = {}
        elif name is not None:
            everything = {name: self.registry.versions(name)}
        else:
            everything = self.registry.everything()
        names = sorted(set(everything) | ({name} if name else set(self.seeds.names())))
        out: list[Listed] = []
        for n in names:
            stored, seeds = everything.get(n, {}), self.seeds.versions(n)
            for version in sorted(set(stored) | set(seeds), key=version_key, reverse=True):
                out.append(self._listed(n, version, stored, seeds))
        return out

    def _listed(self, name: str, version: str, stored: dict[str, Stored], seeds: dict[str, ModuleSpec]) -> Listed:
        found, seed = stored.get(version), seeds.get(version)
        entry = found if isinstance(found, Entry) else None
        origin = " + ".join(
            [*(["registry"] if found is not None else []), *([self.seeds.where(seed)] if seed is not None else [])]
        )
        try:
            spec = self._pick(name, version, stored, seeds)
            problem: WasmqError | None = None
        except WasmqError as exc:
            spec = entry.spec if entry is not None else seed or _placeholder(name, version)
            problem = exc
        return Listed(spec=spec, origin=origin, entry=entry, problem=problem)

    def __iter__(self) -> Iterator[ModuleSpec]:
        """Every servable version (the `ModuleSource` protocol)."""
        for listed in self.listing():
            if listed.problem is None:
                yield listed.spec

    def names(self) -> list[str]:
        return sorted({listed.spec.name for listed in self.listing()})


def _hit(cached: dict[str, Stored], version: str | None) -> bool:
    """Whether the cache can answer without asking the registry (a miss always asks again)."""
    if version is not None:
        return version in cached
    return any(not _yanked(found) for found in cached.values())


def _yanked(found: Stored | None) -> bool:
    return isinstance(found, Entry) and found.yanked is not None


def _placeholder(name: str, version: str) -> ModuleSpec:
    """A spec for a listing row whose stored entry cannot be parsed (its problem says why)."""
    return ModuleSpec(name=name, version=version, sha256="?", abi="?", functions={})
