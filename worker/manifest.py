"""The module manifest: which modules exist, their files, hashes, ABIs, functions and limits.

Parsing is strict: a malformed manifest entry is a `ConfigError` that names the file, the module and the
field, so a typo never turns into a silently different limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidInput

ABIS = ("packed", "seed-rust", "seed-c", "scalar", "component")
MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-call limits. The manifest gives a module's maximum; a job may ask for less, never more."""

    fuel: int = 100_000_000
    timeout_ms: int = 1_000
    memory_mb: int = 64
    max_input_bytes: int = MIB
    max_output_bytes: int = MIB
    max_retries: int = 3  # retries of a retryable failure (see worker/retry.py); 0 turns them off

    @classmethod
    def parse(cls, raw: Any, where: str) -> Limits:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: limits must be an object")
        names = {f.name for f in fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ConfigError(f"{where}: unknown limit(s) {sorted(unknown)}; known: {sorted(names)}")
        for key, value in raw.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "max_retries" else 1):
                raise ConfigError(f"{where}: limit {key} must be a positive integer, not {value!r}")
        return cls(**raw)

    def narrowed(self, requested: dict[str, Any] | None) -> Limits:
        """The limits for one call: `requested` may lower any limit; asking for more is `InvalidInput`."""
        if not requested:
            return self
        changes: dict[str, int] = {}
        for key, value in requested.items():
            if value is None:
                continue
            if not hasattr(self, key):
                raise InvalidInput(f"unknown limit {key!r}; known: {[f.name for f in fields(self)]}")
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "max_retries" else 1):
                raise InvalidInput(f"limit {key} must be a positive integer, not {value!r}")
            ceiling = getattr(self, key)
            if value > ceiling:
                raise InvalidInput(f"limit {key}={value} is above this module's maximum {ceiling}")
            changes[key] = value
        return replace(self, **changes)

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """One callable export: its ABI and, optionally, the export that takes a framed batch."""

    name: str
    abi: str
    batch: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModuleSpec:
    """One registered module version."""

    name: str
    version: str
    path: Path
    sha256: str
    abi: str
    functions: dict[str, FunctionSpec]
    limits: Limits = field(default_factory=Limits)
    description: str = ""
    wit: Path | None = None  # component ABI: the WIT file and the world the component must implement
    world: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def function(self, name: str) -> FunctionSpec:
        try:
            return self.functions[name]
        except KeyError:
            raise InvalidInput(
                f"module {self.ref} has no function {name!r}; it declares {sorted(self.functions)}"
            ) from None


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Order versions so that 1.10.0 > 1.9.0 (numeric parts compare as numbers)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.replace("-", ".").split("."))


def _component_fields(
    entry: dict[str, Any], functions: dict[str, FunctionSpec], base: Path, here: str
) -> dict[str, Any]:
    """`wit` and `world`, required exactly when the module is a component (all its functions then are)."""
    abis = {f.abi for f in functions.values()}
    if "component" not in abis:
        return {}
    if abis != {"component"}:
        raise ConfigError(f"{here}: a component's functions all use abi component, not {sorted(abis)}")
    for key in ("wit", "world"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{here}: a component needs a string {key!r} (its WIT file and world)")
    return {"wit": (base / entry["wit"]).resolve(), "world": entry["world"]}


def load_manifest(path: Path) -> list[ModuleSpec]:
    """Parse one manifest file into module specs; paths inside are relative to the manifest's folder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"manifest {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("modules"), list):
        raise ConfigError(f"manifest {path}: expected an object with a 'modules' list")
    return [parse_module(entry, path.parent, f"manifest {path}") for entry in data["modules"]]


def parse_module(entry: Any, base: Path, where: str) -> ModuleSpec:
    """One manifest entry → `ModuleSpec`, with an error naming what is wrong."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: every module entry must be an object")
    for key in ("name", "version", "file", "sha256"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{where}: module entry {entry.get('name', '?')!r} needs a string {key!r}")
    here = f"{where}: module {entry['name']}@{entry['version']}"
    default_abi = entry.get("abi", "packed")
    if default_abi not in ABIS:
        raise ConfigError(f"{here}: unknown abi {default_abi!r}; known: {list(ABIS)}")
    raw_functions = entry.get("functions")
    if not isinstance(raw_functions, dict) or not raw_functions:
        raise ConfigError(f"{here}: 'functions' must be a non-empty object")
    functions = {}
    for fname, given in raw_functions.items():
        fraw = given or {}
        if not isinstance(fraw, dict):
            raise ConfigError(f"{here}: function {fname!r} must map to an object")
        abi = fraw.get("abi", default_abi)
        if abi not in ABIS:
            raise ConfigError(f"{here}: function {fname!r} has unknown abi {abi!r}; known: {list(ABIS)}")
        batch = fraw.get("batch")
        if batch is not None and (not isinstance(batch, str) or abi != "packed"):
            raise ConfigError(f"{here}: function {fname!r}: 'batch' must name an export, and needs abi packed")
        functions[fname] = FunctionSpec(name=fname, abi=abi, batch=batch)
    return ModuleSpec(
        name=entry["name"],
        version=entry["version"],
        path=(base / entry["file"]).resolve(),
        sha256=entry["sha256"].lower(),
        abi=default_abi,
        functions=functions,
        limits=Limits.parse(entry.get("limits"), here),
        description=str(entry.get("description", "")),
        **_component_fields(entry, functions, base, here),
    )
