"""Extism plugins behind the sandbox's one backend interface: compiled like core modules, run by `ExtismRunner`.

A plugin is compiled by the sandbox's bounded compiler and kept in the shared precompiled cache (a plugin is
a core module as far as compiling goes), then checked by `check_plugin`; a rejection is remembered by content
hash like any other. Each call runs under the spec's limits (narrowed by the job) with the publication's
config. The plugin's log lines (already bounded per call by the runner) go to the job's log, as structlog
events of logger `wasmq.plugin` carrying the module and function, whether the call succeeded or not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import wasmtime

from ...config import Settings
from ...errors import WasmqError
from ...spec import MIB, ModuleSpec
from ..backend import Requested, call_each
from ..compiler import BoundedCompiler
from ..engine import EpochTicker
from ..loading import Remembered, load_compiled, verified
from ..precompiled import PrecompiledCache
from ..result import CallResult, Usage
from ..shared import ArtifactSource
from ..validate import encode_input
from .plugin import ExtismPlugin, check_plugin
from .runner import ExtismRunner

plugin_log = structlog.get_logger("wasmq.plugin")
_LEVELS = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warning", "error": "error"}


class ExtismBackend:
    """Extism plugins, one fresh instance per call (and per batch item); one runner per thread (see `Slot`)."""

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        ticker: EpochTicker,
        settings: Settings,
        precompiled: PrecompiledCache,
        compiler: BoundedCompiler,
        fetch: Callable[[ModuleSpec], bytes],
        artifacts: ArtifactSource | None = None,
        fast: bool = True,
    ) -> None:
        self.engine = engine
        self.ticker = ticker
        self.settings = settings
        self.precompiled = precompiled
        self.compiler = compiler  # compiles in a child process under limits (worker/sandbox/compiler.py)
        self.fetch = fetch
        self.artifacts = artifacts
        self.fast = fast
        self.plugins = Remembered(self._load)
        self._local = threading.local()

    def runner(self) -> ExtismRunner:
        """This thread's runner: a runner serves one call at a time, and its linker and scratch are its own."""
        found: ExtismRunner | None = getattr(self._local, "runner", None)
        if found is None:
            found = self._local.runner = ExtismRunner(
                self.engine, self.ticker, max_captured_output=self.settings.max_captured_output, fast=self.fast
            )
        return found

    def ready(self, spec: ModuleSpec) -> bool:
        return self.plugins.has(spec) or self.precompiled.has(spec)

    def load(self, spec: ModuleSpec) -> None:
        self.plugins(spec)

    def plugin(self, spec: ModuleSpec) -> ExtismPlugin:
        """The compiled, checked plugin of `spec` (`ModuleRejected` if it is not an acceptable plugin)."""
        return self.plugins(spec)

    def _load(self, spec: ModuleSpec) -> ExtismPlugin:
        wasm = verified(spec, self.fetch(spec))
        module, _ = load_compiled(
            spec, wasm, "module", lambda data: wasmtime.Module.deserialize(self.engine, data),
            precompiled=self.precompiled, compiler=self.compiler, artifacts=self.artifacts,
        )  # fmt: skip
        return check_plugin(module, ref=spec.ref, functions=spec.functions)

    def call(self, spec: ModuleSpec, function: str, input: object, limits: Requested) -> CallResult:
        spec.function(function)
        lim = spec.limits.narrowed(limits)
        plugin = self.plugins(spec)
        data = encode_input(input, max_bytes=lim.max_input_bytes)  # InvalidInput: not text, not UTF-8, too large
        try:
            output, usage = self.runner().call(
                plugin, function, data,
                fuel=lim.fuel, timeout_ms=lim.timeout_ms, memory_bytes=lim.memory_mb * MIB,
                max_output_bytes=lim.max_output_bytes, max_input_bytes=lim.max_input_bytes, config=dict(spec.config),
            )  # fmt: skip
        except WasmqError as exc:
            used = exc.details.get("usage")
            _emit(spec, function, used.get("logs") if isinstance(used, dict) else None)
            raise
        _emit(spec, function, usage.logs)
        return CallResult(output=output, usage=Usage(usage.fuel, usage.wall_ms, usage.memory_bytes))

    def call_many(
        self, spec: ModuleSpec, function: str, inputs: Sequence[object], limits: Requested
    ) -> list[CallResult | WasmqError]:
        return call_each(self, spec, function, inputs, limits)


def _emit(spec: ModuleSpec, function: str, logs: Any) -> None:
    """The plugin's log lines of one call, into the job's log (the runner bounded their number and size)."""
    for line in logs or ():
        level = _LEVELS.get(line.get("level", ""), "info")
        getattr(plugin_log, level)(line.get("message", ""), module=spec.ref, function=function)
