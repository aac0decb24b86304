"""What a module version is: its ABI, functions and limits. Plain data shared by every layer.

The catalog builds these (from manifests, later from the shared registry), the sandbox runs them, producers
check requests against them; none of those needs to know where a spec came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidInput

MIB = 1024 * 1024

# Every ABI a function may declare, in one place: `CORE_ABIS` run through worker/sandbox/core/, the component
# ABI through worker/sandbox/component/ (a module is one or the other, never both).
CORE_ABIS = ("packed", "seed-rust", "seed-c", "scalar")
COMPONENT_ABI = "component"
ABIS = (*CORE_ABIS, COMPONENT_ABI)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-call limits. The manifest gives a module's maximum; a job may ask for less, never more."""

    fuel: int = 100_000_000
    timeout_ms: int = 1_000
    memory_mb: int = 64
    max_input_bytes: int = MIB
    max_output_bytes: int = MIB
    max_retries: int = 3  # retries of a retryable failure (see worker/queue/retry.py); 0 turns them off

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
            if not _valid_limit(key, value):
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
            if not _valid_limit(key, value):
                raise InvalidInput(f"limit {key} must be a positive integer, not {value!r}")
            ceiling = getattr(self, key)
            if value > ceiling:
                raise InvalidInput(f"limit {key}={value} is above this module's maximum {ceiling}")
            changes[key] = value
        return replace(self, **changes)

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _valid_limit(key: str, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "max_retries" else 1)


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

    @property
    def is_component(self) -> bool:
        return self.abi == COMPONENT_ABI

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
