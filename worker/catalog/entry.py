"""One publication as JSON: the fields a seed manifest's entry and a registry entry share, parsed strictly.

A seed manifest names its module's file and WIT file (paths relative to the manifest); a registry entry
carries neither, its bytes are a blob found by sha256 and its WIT is text. Everything else (functions and
their ABIs, batch exports, limits, capabilities) is read by the same code, so a publication means the same
thing wherever it is written down. `differences` says what two publications of one `name@version` disagree
on: the message of a `PublishConflict`, and of a seed that contradicts the registry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..spec import (
    ABIS,
    COMPONENT_ABI,
    EXTISM_ABI,
    WHOLE_MODULE_ABIS,
    Capabilities,
    FunctionSpec,
    Limits,
    ModuleSpec,
    check_config,
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def check_ref(name: Any, version: Any, where: str) -> None:
    """Names and versions are plain words (they become Redis keys and `name@version` references)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: module name {name!r} must be letters, digits, '.', '_' or '-' (at most 128)")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ConfigError(f"{where}: version {version!r} of {name} must be letters, digits, '.', '+', '_' or '-'")


def parse_functions(raw: Any, default_abi: str, here: str) -> dict[str, FunctionSpec]:
    """`{"F": {"abi": ..., "batch": ...}}` (an empty or null value takes the default ABI)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{here}: 'functions' must be a non-empty object")
    functions = {}
    for fname, given in raw.items():
        fraw = given or {}
        if not isinstance(fname, str) or not fname:
            raise ConfigError(f"{here}: function names must be non-empty text, not {fname!r}")
        if not isinstance(fraw, dict):
            raise ConfigError(f"{here}: function {fname!r} must map to an object")
        abi = fraw.get("abi", default_abi)
        if abi not in ABIS:
            raise ConfigError(f"{here}: function {fname!r} has unknown abi {abi!r}; known: {list(ABIS)}")
        batch = fraw.get("batch")
        if batch is not None and (not isinstance(batch, str) or abi != "packed"):
            raise ConfigError(f"{here}: function {fname!r}: 'batch' must name an export, and needs abi packed")
        functions[fname] = FunctionSpec(name=fname, abi=abi, batch=batch)
    abis = {f.abi for f in functions.values()}
    for whole in WHOLE_MODULE_ABIS:
        if whole in abis and abis != {whole}:
            raise ConfigError(f"{here}: a module with abi {whole} has it for all its functions, not {sorted(abis)}")
    return functions


def spec_from_entry(entry: Any, where: str, *, path: Path | None, wit: str | None) -> ModuleSpec:
    """One entry → `ModuleSpec`, with an error naming the field that is wrong. `path` and `wit` (the WIT
    text) are given by the caller: they are written differently in a manifest and in the registry."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: every module entry must be an object")
    check_ref(entry.get("name"), entry.get("version"), where)
    here = f"{where}: module {entry['name']}@{entry['version']}"
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise ConfigError(f"{here}: 'sha256' must be 64 hex digits, not {sha256!r}")
    default_abi = entry.get("abi", "packed")
    if default_abi not in ABIS:
        raise ConfigError(f"{here}: unknown abi {default_abi!r}; known: {list(ABIS)}")
    functions = parse_functions(entry.get("functions"), default_abi, here)
    abis = {f.abi for f in functions.values()}
    for whole in WHOLE_MODULE_ABIS:
        if (abis == {whole}) != (default_abi == whole):
            raise ConfigError(f"{here}: a module with abi {whole} has it, and so do all its functions")
    is_component, is_extism = default_abi == COMPONENT_ABI, default_abi == EXTISM_ABI
    world = entry.get("world")
    if is_component and (not wit or not isinstance(world, str) or not world):
        raise ConfigError(f"{here}: a component needs its WIT ('wit') and the world it implements ('world')")
    capabilities = Capabilities.parse(entry.get("capabilities"), here)  # components: see sandbox/component/wasi.py
    if is_extism and capabilities != Capabilities():
        raise ConfigError(f"{here}: abi {default_abi} grants no capabilities (its imports are fixed by the host)")
    config = entry.get("config")
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{here}: 'config' must map keys to text values")
    if config and not is_extism:
        raise ConfigError(f"{here}: only abi extism takes a plugin 'config'")
    return ModuleSpec(
        name=entry["name"],
        version=entry["version"],
        path=path,
        sha256=sha256.lower(),
        abi=default_abi,
        functions=functions,
        limits=Limits.parse(entry.get("limits"), here),
        capabilities=capabilities,
        description=str(entry.get("description", "")),
        wit=wit if is_component else None,
        world=world if is_component else None,
        config=check_config((config or {}).items(), here),
    )


def entry_from_spec(spec: ModuleSpec) -> dict[str, Any]:
    """The JSON of a publication (no file path: where its bytes are is the store's business)."""
    functions: dict[str, Any] = {}
    for fspec in spec.functions.values():
        functions[fspec.name] = {"abi": fspec.abi, **({"batch": fspec.batch} if fspec.batch else {})}
    entry: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "sha256": spec.sha256,
        "abi": spec.abi,
        "description": spec.description,
        "functions": functions,
        "limits": spec.limits.to_dict(),
        "capabilities": spec.capabilities.to_dict(),
    }
    if spec.is_component:
        entry |= {"wit": spec.wit, "world": spec.world}
    if spec.is_extism:
        entry["config"] = dict(spec.config)
    return entry


def _functions_text(spec: ModuleSpec) -> str:
    return ", ".join(f"{f.name}:{f.abi}" + (f" (batch {f.batch})" if f.batch else "") for f in spec.functions.values())


def differences(old: ModuleSpec, new: ModuleSpec) -> list[str]:
    """What `new` changes in `old` (two publications of one name@version); empty when they are the same.
    Descriptions may differ: they change nothing a worker does."""
    out = []
    if old.sha256 != new.sha256:
        out.append(f"bytes: sha256 {old.sha256} there, {new.sha256} here")
    if old.functions != new.functions or old.abi != new.abi:
        out.append(f"functions: {_functions_text(old)} there, {_functions_text(new)} here")
    if old.limits != new.limits:
        changed = {
            k: (v, new.limits.to_dict()[k]) for k, v in old.limits.to_dict().items() if v != getattr(new.limits, k)
        }
        out.append("limits: " + ", ".join(f"{k} {a} there, {b} here" for k, (a, b) in changed.items()))
    if old.capabilities != new.capabilities:
        there, here = (", ".join(s.capabilities.granted()) or "none" for s in (old, new))
        out.append(f"capabilities: {there} there, {here} here" if there != here else "environment values differ")
    if old.config != new.config:
        there, here = (", ".join(f"{k}={v}" for k, v in s.config) or "none" for s in (old, new))
        out.append(f"config: {there} there, {here} here")
    if (old.wit, old.world) != (new.wit, new.world):
        out.append(f"WIT: world {old.world} there, {new.world} here" + (" (other text)" if old.wit != new.wit else ""))
    return out
