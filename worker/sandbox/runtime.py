"""The sandbox of one process: its Engine and epoch ticker, and one backend per kind of module.

`Sandbox` resolves a reference through the `ModuleSource` it was given (the catalog), picks the backend
(core modules, components or Extism plugins), and hands it the call. Build one per process, after fork.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import Settings
from ..errors import WasmqError
from ..spec import ModuleSpec
from .backend import Backend, Requested
from .compiler import BoundedCompiler, CompileLimits
from .component.runner import ComponentBackend
from .core.runner import CoreBackend
from .engine import EpochTicker, make_engine
from .extism.backend import ExtismBackend
from .loading import ModuleSource
from .precompiled import PrecompiledCache
from .result import CallResult
from .shared import ArtifactSource


class Sandbox:
    """Runs module calls in this process: a fresh instance per call, under the module's limits."""

    def __init__(
        self,
        catalog: ModuleSource,
        *,
        settings: Settings | None = None,
        fast: bool = True,
        artifacts: ArtifactSource | None = None,
    ) -> None:
        """`artifacts`: where precompiled artifacts shared by other hosts come from (None: compile here)."""
        self.settings = settings or Settings()
        self.catalog = catalog
        self.engine = make_engine()
        self.ticker = EpochTicker(self.engine, tick_ms=self.settings.epoch_tick_ms).start()
        self.precompiled = precompiled = PrecompiledCache(self.settings.cache_dir)
        compiler = BoundedCompiler(
            CompileLimits(timeout_s=self.settings.compile_timeout_s, memory_mb=self.settings.compile_memory_mb)
        )
        self.core = CoreBackend(
            engine=self.engine, ticker=self.ticker, settings=self.settings, precompiled=precompiled,
            compiler=compiler, fetch=catalog.wasm, artifacts=artifacts, fast=fast,
        )  # fmt: skip
        self.components = ComponentBackend(
            engine=self.engine,
            ticker=self.ticker,
            precompiled=precompiled,
            compiler=compiler,
            fetch=catalog.wasm,
            artifacts=artifacts,
            max_captured_output=self.settings.max_captured_output,
        )
        self.extism = ExtismBackend(
            engine=self.engine, ticker=self.ticker, settings=self.settings, precompiled=precompiled,
            compiler=compiler, fetch=catalog.wasm, artifacts=artifacts, fast=fast,
        )  # fmt: skip

    @property
    def fast(self) -> bool:
        """Whether core-module calls take the C-API hot path (worker/sandbox/capi.py)."""
        return self.core.fast

    def close(self) -> None:
        self.ticker.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spec(self, module: str | ModuleSpec) -> ModuleSpec:
        return module if isinstance(module, ModuleSpec) else self.catalog.resolve(module)

    def backend(self, spec: ModuleSpec) -> Backend:
        if spec.is_extism:
            return self.extism
        return self.components if spec.is_component else self.core

    def load(self, spec: ModuleSpec, *, compile: bool = True) -> bool:
        """Compile (or load from the cache) one registered module, whatever its ABI: a worker's warm-up.
        With `compile=False`, only what needs no compiling is loaded (a process start must stay fast: a
        module can take up to `compile_timeout_s` to compile); returns whether it was loaded."""
        backend = self.backend(spec)
        if not compile and not backend.ready(spec):
            return False
        backend.load(spec)
        return True

    def call(self, module: str | ModuleSpec, function: str, input: object, limits: Requested = None) -> CallResult:
        """Run one call in a fresh instance; returns the checked answer or raises a `WasmqError`."""
        spec = self.spec(module)
        return self.backend(spec).call(spec, function, input, limits)

    def call_many(
        self, module: str | ModuleSpec, function: str, inputs: Sequence[object], limits: Requested = None
    ) -> list[CallResult | WasmqError]:
        """One result or typed error per input, in order (a batch export shares one instance per chunk)."""
        spec = self.spec(module)
        return self.backend(spec).call_many(spec, function, inputs, limits)
