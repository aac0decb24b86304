"""Manifest files: the local, read-only seed of which modules exist (files, hashes, ABIs, functions, limits),
for images with modules baked in and for air-gapped hosts; the shared registry is where modules are published.

Parsing is strict: a malformed manifest entry is a `ConfigError` that names the file, the module and the
field, so a typo never turns into a silently different limit. An entry reads like a registry entry
(worker/catalog/entry.py) with two differences: `file` is the module's path and `wit` the WIT file's path,
both relative to the manifest's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..spec import ModuleSpec
from .entry import spec_from_entry


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
    here = f"{where}: module {entry.get('name', '?')}@{entry.get('version', '?')}"
    for key in ("file", *(("wit",) if "wit" in entry else ())):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{here} needs a string {key!r} (a path relative to the manifest)")
    wit = None
    if "wit" in entry:
        wit_path = (base / entry["wit"]).resolve()
        try:
            wit = wit_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{here}: WIT file {wit_path} is not readable: {exc}") from None
    return spec_from_entry(entry, where, path=(base / entry["file"]).resolve(), wit=wit)
