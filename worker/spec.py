"""What a module version is: its ABI, functions, limits and capabilities. Plain data shared by every layer.

The catalog builds these (from seed manifests and the shared registry), the sandbox runs them, producers
check requests against them; none of those needs to know where a spec came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidInput

MIB = 1024 * 1024

# Every ABI a function may declare, in one place: `CORE_ABIS` run through worker/sandbox/core/, the component
# ABI through worker/sandbox/component/, the extism ABI (unmodified Extism plugins) through
# worker/sandbox/extism/. A module is exactly one of the three: core, component or extism.
CORE_ABIS = ("packed", "seed-rust", "seed-c", "scalar")
COMPONENT_ABI = "component"
EXTISM_ABI = "extism"
ABIS = (*CORE_ABIS, COMPONENT_ABI, EXTISM_ABI)
WHOLE_MODULE_ABIS = (COMPONENT_ABI, EXTISM_ABI)  # a module with one of these has it for all its functions


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


ALLOWABLE = ("clock", "random")  # the capabilities `--allow` names; env and output size have options of their own
MAX_ENV_BYTES = 32 * 1024  # all environment variables of one publication together


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a module version may do beyond computing on its input, each off unless its publication grants it.

    Enforced by the sandbox on every host (worker/sandbox/wasi.py): a WASI function that is not granted
    answers `notcapable` (a component importing a WASI 0.2 clock or randomness not granted is refused at
    load time, worker/sandbox/component/wasi.py), the environment is exactly `env`, and stdout/stderr keep
    `output_bytes` per stream and call (never more than the worker's WASMQ_MAX_CAPTURED_OUTPUT), the rest
    counted and dropped.
    """

    clock: bool = False  # WASI clocks (clock_time_get, clock_res_get) and poll_oneoff, the way to sleep
    random: bool = False  # WASI random_get
    env: tuple[tuple[str, str], ...] = ()  # environment variables, fixed in the publication
    output_bytes: int = 0  # captured stdout/stderr per stream and call; 0: dropped

    @classmethod
    def parse(cls, raw: Any, where: str) -> Capabilities:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: capabilities must be an object")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(
                f"{where}: unknown capabilities {sorted(unknown)}; known: {[f.name for f in fields(cls)]}"
            )
        for flag in ALLOWABLE:
            if not isinstance(raw.get(flag, False), bool):
                raise ConfigError(f"{where}: capability {flag} must be true or false, not {raw[flag]!r}")
        output = raw.get("output_bytes", 0)
        if not isinstance(output, int) or isinstance(output, bool) or output < 0:
            raise ConfigError(f"{where}: capability output_bytes must be a whole number of bytes, not {output!r}")
        env = raw.get("env") or {}
        if not isinstance(env, dict):
            raise ConfigError(f"{where}: capability env must map names to values")
        return cls(
            clock=raw.get("clock", False),
            random=raw.get("random", False),
            env=check_env(env.items(), where),
            output_bytes=output,
        )

    def granted(self) -> list[str]:
        """What this grants, in words (`wasmq modules show`); empty when nothing is granted."""
        out = [flag for flag in ALLOWABLE if getattr(self, flag)]
        out += [f"env {key}={value if len(value) <= 40 else value[:37] + '...'}" for key, value in self.env]
        if self.output_bytes:
            out.append(f"output {self.output_bytes} bytes")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"clock": self.clock, "random": self.random, "env": dict(self.env), "output_bytes": self.output_bytes}


def check_env(pairs: Any, where: str) -> tuple[tuple[str, str], ...]:
    """Environment variables for a publication: text names without `=` or NUL, text values without NUL."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ConfigError(f"{where}: environment variable name {key!r} must be text without '=' or NUL")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(f"{where}: environment variable {key} must have a text value without NUL")
        out.append((key, value))
    if len({k for k, _ in out}) != len(out):
        raise ConfigError(f"{where}: an environment variable is given twice")
    if sum(len(k.encode()) + len(v.encode()) + 2 for k, v in out) > MAX_ENV_BYTES:
        raise ConfigError(f"{where}: the environment variables add up to more than {MAX_ENV_BYTES} bytes")
    return tuple(sorted(out))


MAX_CONFIG_BYTES = 64 * 1024  # all config entries of one Extism publication together


def check_config(pairs: Any, where: str) -> tuple[tuple[str, str], ...]:
    """An Extism plugin's config (what its `config_get` reads): non-empty text keys, text values, no NUL."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        if not isinstance(key, str) or not key or "\0" in key:
            raise ConfigError(f"{where}: config key {key!r} must be non-empty text without NUL")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(f"{where}: config {key} must have a text value without NUL, not {value!r}")
        out.append((key, value))
    if len({k for k, _ in out}) != len(out):
        raise ConfigError(f"{where}: a config key is given twice")
    if sum(len(k.encode()) + len(v.encode()) for k, v in out) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: the config entries add up to more than {MAX_CONFIG_BYTES} bytes")
    return tuple(sorted(out))


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
    sha256: str
    abi: str  # the default ABI of its functions (`component` or `extism`: then all its functions have it)
    functions: dict[str, FunctionSpec]
    path: Path | None = None  # a seed manifest's file; None: the bytes are in the registry, by sha256
    limits: Limits = field(default_factory=Limits)
    capabilities: Capabilities = field(default_factory=Capabilities)
    description: str = ""
    wit: str | None = None  # component ABI: the WIT text and the world the component must implement
    world: str | None = None
    config: tuple[tuple[str, str], ...] = ()  # extism ABI: the plugin's config, fixed in the publication

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def is_component(self) -> bool:
        return self.abi == COMPONENT_ABI

    @property
    def is_extism(self) -> bool:
        return self.abi == EXTISM_ABI

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
