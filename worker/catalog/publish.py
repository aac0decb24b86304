"""Publishing to the shared registry: check a module as a worker would, store its bytes once, add its entry;
yank a version; verify everything registered.

A published `name@version` is immutable: publishing it again with other bytes or other functions, limits,
capabilities, WIT or plugin config is a `PublishConflict` that says what differs (the identical publication is
a no-op), and a yanked version never comes back. Nothing is visible before the module passed the bounded check
(worker/catalog/check.py); the entry is written last, in one step, after its bytes. Workers everywhere see
the change within about a second without a restart (worker/catalog/watch.py).
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError, ModuleNotFound, ModuleRejected, PublishConflict, WasmqError
from ..keys import registry_blob_key
from ..sandbox.engine import engine_fingerprint
from ..spec import MIB, Capabilities, ModuleSpec
from .artifacts import SharedArtifacts
from .catalog import Listed, ModuleCatalog
from .check import check_module
from .entry import differences, spec_from_entry
from .registry import Entry, Registry, Yank
from .seeds import Seeds


@dataclass(frozen=True)
class Published:
    entry: Entry
    added: bool  # False: this exact publication was there already
    artifact_shared: bool = False  # the compiled artifact was stored for this engine fingerprint


def registry_for(settings: Settings) -> Registry:
    """The registry of `settings`, writing with the publisher's credentials."""
    return Registry.for_settings(settings)


def parse_functions(functions: list[str], default_abi: str | None, batch: dict[str, str]) -> dict[str, dict[str, str]]:
    """`F` or `F:ABI` per function (`default_abi` for those naming none) → the entry's `functions` object."""
    out: dict[str, dict[str, str]] = {}
    for item in functions:
        name, _, abi = item.partition(":")
        abi = abi or default_abi or ""
        if not name or not abi:
            raise ConfigError(f"function {item!r} names no ABI: write {name or 'F'}:ABI or give --abi")
        if name in out:
            raise ConfigError(f"function {name!r} is given twice")
        out[name] = {"abi": abi, **({"batch": batch[name]} if name in batch else {})}
    unknown = sorted(set(batch) - set(out))
    if unknown:
        raise ConfigError(f"--batch names functions that are not published: {unknown}")
    return out


@dataclass(frozen=True, kw_only=True)
class Publication:
    """What `wasmq modules add` says about a module file (all but its bytes)."""

    name: str
    version: str
    functions: list[str]  # F or F:ABI
    abi: str | None = None  # the ABI of functions that name none
    batch: dict[str, str] = field(default_factory=dict)  # function -> its batch export
    limits: dict[str, int] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    description: str = ""
    wit: str | None = None  # component ABI: the WIT text and the world
    world: str | None = None
    config: dict[str, str] = field(default_factory=dict)  # extism ABI: the plugin's config

    def spec(self, wasm: bytes) -> ModuleSpec:
        """The publication of `wasm`, checked like any entry (worker/catalog/entry.py)."""
        if not self.functions:
            raise ConfigError("name at least one function (--function F[:ABI])")
        functions = parse_functions(self.functions, self.abi, self.batch)
        abis = {f["abi"] for f in functions.values()}
        entry = {
            "name": self.name, "version": self.version, "sha256": hashlib.sha256(wasm).hexdigest(),
            "abi": self.abi or (abis.pop() if len(abis) == 1 else "packed"), "functions": functions,
            "limits": self.limits or None, "capabilities": self.capabilities.to_dict(),
            "description": self.description, "world": self.world, "config": self.config or None,
        }  # fmt: skip
        return spec_from_entry(entry, "publication", path=None, wit=self.wit)


def publish(settings: Settings, wasm_path: Path, publication: Publication) -> Published:
    """Check the module file at `wasm_path` and publish it as `publication` says."""
    try:
        size = wasm_path.stat().st_size
        if size > settings.max_module_mb * MIB:
            raise ModuleRejected(
                f"{wasm_path} is {size} bytes, more than WASMQ_MAX_MODULE_MB ({settings.max_module_mb} MiB) allows"
            )
        wasm = wasm_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {wasm_path}: {exc.strerror}") from None
    spec = publication.spec(wasm)
    registry = registry_for(settings)
    try:
        existing = registry.versions(spec.name).get(spec.version)
        if existing is not None:
            return Published(entry=_same_or_conflict(existing, spec), added=False)
        _check_seeds(settings, spec)
        artifact = check_module(spec, wasm, settings)
        registry.put_blob(registry_blob_key(spec.sha256), wasm)
        entry = Entry(spec=spec, size=len(wasm), published_by=_who(registry), published_at=_now())
        added, current = registry.set_entry(entry, expected=None, action="published")
        if not added:  # another publisher won the race for this version
            assert current is not None
            return Published(entry=_same_or_conflict(current, spec), added=False)
        kind = "component" if spec.is_component else "module"
        shared = SharedArtifacts(registry).store(spec, kind, engine_fingerprint(), artifact)
        return Published(entry=entry, added=True, artifact_shared=shared)
    finally:
        registry.close()


def _same_or_conflict(existing: Entry | ModuleRejected, spec: ModuleSpec) -> Entry:
    """The stored entry if it is this very publication; otherwise the `PublishConflict` saying why not."""
    if isinstance(existing, ModuleRejected):
        raise PublishConflict(f"{spec.ref} is already in the registry, unreadable ({existing.message})")
    if existing.yanked is not None:
        raise PublishConflict(f"{spec.ref} was {existing.yanked.describe()}; a yanked version never comes back")
    differ = differences(existing.spec, spec)
    if differ:
        raise PublishConflict(
            f"{spec.ref} is already published ({existing.published_at} by {existing.published_by}) with other "
            f"content: {'; '.join(differ)}. A published version is immutable: publish a new version",
            differences=differ,
        )
    return existing


def _check_seeds(settings: Settings, spec: ModuleSpec) -> None:
    """A seed manifest this publisher can see must not hold this version with other content."""
    seeds = Seeds(manifests=settings.manifests)
    seed = seeds.versions(spec.name).get(spec.version)
    differ = differences(seed, spec) if seed is not None else []
    if seed is not None and differ:
        raise PublishConflict(f"{spec.ref} is in {seeds.where(seed)} with other content: {'; '.join(differ)}")


def yank(settings: Settings, ref: str, *, reason: str = "") -> tuple[Entry, bool]:
    """Withdraw `name@version`: new jobs get `ModuleNotFound` naming the yank, running ones finish. A version
    only in a seed manifest is yanked by recording it in the registry as yanked. (entry, whether it changed)"""
    name, at, version = ref.partition("@")
    if not at or not name or not version:
        raise ConfigError(f"yank needs NAME@VERSION, not {ref!r}")
    registry = registry_for(settings)
    try:
        stored = registry.versions(name).get(version)
        if isinstance(stored, ModuleRejected):
            raise stored
        mark = Yank(at=_now(), by=_who(registry), reason=reason)
        if stored is not None:
            if stored.yanked is not None:
                return stored, False
            entry = replace(stored, yanked=mark)
        else:
            seed = Seeds(manifests=settings.manifests).versions(name).get(version)
            if seed is None:
                raise ModuleNotFound(f"no module {ref} in the registry or the seed manifests")
            size = seed.path.stat().st_size if seed.path is not None and seed.path.exists() else 0
            entry = Entry(spec=replace(seed, path=None), size=size, published_by="seed", published_at="", yanked=mark)
        done, _ = registry.set_entry(entry, expected=stored, action="yanked")
        if not done:
            raise PublishConflict(f"{ref} changed while it was being yanked; run yank again")
        return entry, True
    finally:
        registry.close()


def verify(
    catalog: ModuleCatalog, settings: Settings, *, names: list[str] | None = None
) -> list[tuple[Listed, WasmqError | None]]:
    """Every registered version (of `names`, if given) checked as a worker would (bounded, in a child
    process); None where it is fine. Yanked versions are listed with their yank and not checked."""
    results: list[tuple[Listed, WasmqError | None]] = []
    listing = [listed for name in names for listed in catalog.listing(name)] if names else catalog.listing()
    for listed in listing:
        if listed.problem is not None:
            results.append((listed, listed.problem))
            continue
        try:
            wasm = catalog.wasm(listed.spec)
            check_module(listed.spec, wasm, settings)
            results.append((listed, None))
        except WasmqError as exc:
            results.append((listed, exc))
    return results


def _who(registry: Registry) -> str:
    return f"{registry.whoami()} ({getpass.getuser()}@{socket.gethostname()})"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
