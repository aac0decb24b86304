"""Manifest files: the local, read-only seed of which modules exist (files, hashes, ABIs, functions, limits).

Parsing is strict: a malformed manifest entry is a `ConfigError` that names the file, the module and the
field, so a typo never turns into a silently different limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..spec import ABIS, COMPONENT_ABI, FunctionSpec, Limits, ModuleSpec


def _component_fields(
    entry: dict[str, Any], functions: dict[str, FunctionSpec], base: Path, here: str
) -> dict[str, Any]:
    """`wit` and `world`, required exactly when the module is a component (all its functions then are)."""
    abis = {f.abi for f in functions.values()}
    if COMPONENT_ABI not in abis:
        return {}
    if abis != {COMPONENT_ABI}:
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
