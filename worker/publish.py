"""Publishing modules: check a module file, copy it next to the manifest, add its manifest entry.

A published `name@version` is immutable: publishing it again with other bytes is refused. The manifest is
rewritten atomically (temporary file + rename), so a worker re-reading it never sees half a file; workers
pick the new version up within a second (worker/catalog.py) without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import wasmtime

from .catalog import ModuleCatalog
from .component_registry import ComponentRegistry
from .errors import ConfigError, ModuleRejected, WasmqError
from .manifest import ABIS, Limits, ModuleSpec, load_manifest, parse_module
from .registry import ModuleRegistry
from .sandbox.engine import make_engine
from .sandbox.wasi_host import BoundedWasi


def check_module(spec: ModuleSpec) -> None:
    """Compile `spec` and check its hash, imports and exports exactly as a worker would."""
    engine = make_engine()
    if spec.abi == "component":
        ComponentRegistry(engine).loaded(spec)
        return
    linker = wasmtime.Linker(engine)
    BoundedWasi().define(linker)
    ModuleRegistry(ModuleCatalog([spec]), engine=engine, linker=linker, cache_dir=None).compiled(spec)


def _entry(spec: ModuleSpec, file: str) -> dict[str, Any]:
    functions: dict[str, Any] = {}
    for fspec in spec.functions.values():
        functions[fspec.name] = {"abi": fspec.abi, **({"batch": fspec.batch} if fspec.batch else {})}
    return {
        "name": spec.name,
        "version": spec.version,
        "file": file,
        "sha256": spec.sha256,
        "abi": spec.abi,
        "description": spec.description,
        "functions": functions,
        "limits": spec.limits.to_dict(),
    }


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Published:
    spec: ModuleSpec
    added: bool  # False: this exact name@version and content was already published


def add_module(
    manifest: Path,
    wasm: Path,
    *,
    name: str,
    version: str,
    abi: str,
    functions: list[str],
    batch: dict[str, str] | None = None,
    limits: dict[str, int] | None = None,
    description: str = "",
    wit: Path | None = None,
    world: str | None = None,
) -> Published:
    """Check `wasm` for `abi`, copy it under the manifest's folder, and add its entry to `manifest`."""
    if abi not in ABIS:
        raise ConfigError(f"unknown abi {abi!r}; known: {list(ABIS)}")
    if not functions:
        raise ConfigError("name at least one function (--function F)")
    try:
        data = wasm.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {wasm}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    existing = load_manifest(manifest) if manifest.exists() else []
    for spec in existing:
        if spec.name == name and spec.version == version:
            if spec.sha256 == digest:
                return Published(spec=spec, added=False)
            raise WasmqError(f"{name}@{version} is already published with sha256 {spec.sha256}; use a new version")
    relative = f"published/{name}/{version}/{digest[:16]}.wasm"
    component: dict[str, str] = {}
    if abi == "component":
        if wit is None or not world:
            raise ConfigError("a component needs --wit FILE and --world NAME")
        component = {"wit": f"published/{name}/{version}/{wit.name}", "world": world}
        (manifest.parent / component["wit"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wit, manifest.parent / component["wit"])
    spec = parse_module(
        {"name": name, "version": version, "file": relative, "sha256": digest, "abi": abi, **component,
         "description": description, "limits": Limits().to_dict() | (limits or {}),
         "functions": {f: {"abi": abi, **({"batch": batch[f]} if batch and f in batch else {})} for f in functions}},
        manifest.parent, f"new module {name}@{version}",
    )  # fmt: skip
    check_module(replace(spec, path=wasm.resolve()))  # raises ModuleRejected with the reason
    target = manifest.parent / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wasm, target)
    document = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else {"modules": []}
    document.setdefault("modules", []).append(_entry(spec, relative) | component)
    _write_json_atomically(manifest, document)
    return Published(spec=spec, added=True)


def verify(catalog: ModuleCatalog) -> list[tuple[ModuleSpec, WasmqError | None]]:
    """Every registered module, checked as a worker would check it; None where it is fine."""
    results: list[tuple[ModuleSpec, WasmqError | None]] = []
    for spec in catalog:
        try:
            check_module(spec)
            results.append((spec, None))
        except (ModuleRejected, ConfigError) as exc:
            results.append((spec, exc))
    return results
