"""One sandboxed call: a fresh Store and instance, fuel, an epoch deadline, a memory cap, checked output.

`Sandbox` owns the process's Engine, Linker (WASI, nothing granted), epoch ticker and module registry.
A single call (`call`) never shares an instance with another call. A batch chunk (`call_many`) shares one
instance among the items of that chunk only, through the module's `F_many` export; if that call fails,
every item is re-run alone so each gets its own result or typed error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import wasmtime

from ..catalog import ModuleCatalog
from ..component_registry import ComponentRegistry
from ..config import Settings
from ..errors import WasmqError
from ..manifest import MIB, FunctionSpec, Limits, ModuleSpec
from ..registry import CompiledModule, ModuleRegistry
from . import capi
from .abi import ADAPTERS, call_batch
from .compiler import BoundedCompiler, CompileLimits
from .component import ComponentRunner
from .engine import EpochTicker, make_engine
from .guest import Guest, PublicStore
from .traps import classify
from .validate import decode_output, encode_input
from .wasi import CapturedStream
from .wasi_host import BoundedWasi

T = TypeVar("T")
MAX_TABLE_ELEMENTS = 100_000  # per table: 800 KB of host memory that the memory cap does not count
MAX_TABLES = 4  # per instance: toolchains emit one (reference types allow more)
MAX_INSTANCES = 1  # one core module per store


@dataclass(frozen=True)
class Usage:
    """What one call consumed."""

    fuel: int
    wall_ms: float
    memory_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"fuel": self.fuel, "wall_ms": round(self.wall_ms, 3), "memory_bytes": self.memory_bytes}


@dataclass(frozen=True)
class CallResult:
    """A validated answer, what it cost, and what the module printed (WASI modules only)."""

    output: str
    usage: Usage
    stdout: str = ""
    stderr: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "usage": self.usage.to_dict()}


Body = Callable[[Guest], T]


class Sandbox:
    """Runs module calls in this process; build one per process, after fork."""

    def __init__(self, catalog: ModuleCatalog, *, settings: Settings | None = None, fast: bool = True) -> None:
        self.settings = settings or Settings()
        self.engine = make_engine()
        # The C-API hot path (worker/sandbox/capi.py) unless this wasmtime-py build does not match it.
        self.fast = fast and capi.AVAILABLE
        self._engine_address = capi.address(self.engine) if self.fast else 0
        self.linker = wasmtime.Linker(self.engine)
        self.wasi = BoundedWasi()  # every WASI function bounded by the call's deadline and fuel
        self.wasi.define(self.linker)
        compiler = BoundedCompiler(
            CompileLimits(timeout_s=self.settings.compile_timeout_s, memory_mb=self.settings.compile_memory_mb)
        )
        self.registry = ModuleRegistry(
            catalog, engine=self.engine, linker=self.linker, cache_dir=self.settings.cache_dir, compiler=compiler
        )
        self.ticker = EpochTicker(self.engine, tick_ms=self.settings.epoch_tick_ms).start()
        self.components = ComponentRegistry(self.engine, cache_dir=self.settings.cache_dir, compiler=compiler)
        self.component_runner = ComponentRunner(self.engine, self.ticker)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sandbox:
        return cls(ModuleCatalog.from_manifests(settings.manifests), settings=settings)

    def close(self) -> None:
        self.ticker.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, spec: ModuleSpec, *, compile: bool = True) -> bool:
        """Compile (or load from the cache) one registered module, whatever its ABI: a worker's warm-up.
        With `compile=False`, only what needs no compiling is loaded (a process start must stay fast: a
        module can take up to `compile_timeout_s` to compile); returns whether it was loaded."""
        registry = self.components if spec.abi == "component" else self.registry
        if not compile and not registry.ready(spec):
            return False
        if spec.abi == "component":
            self.components.loaded(spec)
        else:
            self.registry.compiled(spec)
        return True

    # -- public calls --------------------------------------------------------------------------------

    def prepare(
        self, module: str | ModuleSpec, function: str, limits: dict[str, Any] | None = None
    ) -> tuple[CompiledModule, FunctionSpec, Limits]:
        """Resolve, check and compile what a call needs; raises the typed error for a bad request."""
        spec = module if isinstance(module, ModuleSpec) else self.registry.resolve(module)
        fspec = spec.function(function)
        lim = spec.limits.narrowed(limits)
        return self.registry.compiled(spec), fspec, lim

    def call(
        self, module: str | ModuleSpec, function: str, input: object, limits: dict[str, Any] | None = None
    ) -> CallResult:
        """Run one call in a fresh instance; returns the checked answer or raises a `WasmqError`."""
        spec = module if isinstance(module, ModuleSpec) else self.registry.resolve(module)
        if spec.abi == "component":
            return self._call_component(spec, function, input, limits)
        compiled, fspec, lim = self.prepare(spec, function, limits)
        data = encode_input(input, max_bytes=lim.max_input_bytes)
        adapter = ADAPTERS[fspec.abi]

        def body(guest: Guest) -> str:
            # free=False: the instance is dropped right after this call (see worker/sandbox/abi.py).
            raw = adapter(guest, fspec.name, data, lim.max_output_bytes, False)
            return decode_output(raw, max_bytes=lim.max_output_bytes)

        output, usage, out, err = self._run(compiled, lim, body)
        return CallResult(output=output, usage=usage, stdout=out, stderr=err)

    def call_many(
        self,
        module: str | ModuleSpec,
        function: str,
        inputs: Sequence[object],
        limits: dict[str, Any] | None = None,
    ) -> list[CallResult | WasmqError]:
        """One result or typed error per input, in order; uses the batch export when the module has one."""
        spec = module if isinstance(module, ModuleSpec) else self.registry.resolve(module)
        if spec.abi == "component":  # no batch convention: one fresh instance per item
            return [self._call_or_error(spec, function, item, limits) for item in inputs]
        compiled, fspec, lim = self.prepare(spec, function, limits)
        results: list[CallResult | WasmqError | None] = [None] * len(inputs)
        pending: list[tuple[int, bytes]] = []
        for index, item in enumerate(inputs):
            try:
                pending.append((index, encode_input(item, max_bytes=lim.max_input_bytes)))
            except WasmqError as exc:
                results[index] = exc
        if fspec.batch and len(pending) > 1:
            try:
                batch = self._run_batch(compiled, fspec, lim, pending)
                for (index, _), result in zip(pending, batch, strict=True):
                    results[index] = result
                pending = []
            except WasmqError:
                pass  # the chunk failed as a whole: fall back to one instance per item below
        for index, _ in pending:
            try:
                results[index] = self.call(compiled.spec, function, inputs[index], limits)
            except WasmqError as exc:
                results[index] = exc
        return [r for r in results if r is not None]

    # -- internals -----------------------------------------------------------------------------------

    def _call_or_error(
        self, spec: ModuleSpec, function: str, input: object, limits: dict[str, Any] | None
    ) -> CallResult | WasmqError:
        try:
            return self.call(spec, function, input, limits)
        except WasmqError as exc:
            return exc

    def _call_component(
        self, spec: ModuleSpec, function: str, input: object, limits: dict[str, Any] | None
    ) -> CallResult:
        """The component ABI (worker/sandbox/component.py): same limits, same error taxonomy."""
        spec.function(function)
        lim = spec.limits.narrowed(limits)
        result = self.component_runner.call(self.components.loaded(spec), function, input, lim)
        usage = Usage(fuel=result.usage.fuel, wall_ms=result.usage.wall_ms, memory_bytes=0)
        return CallResult(output=result.output, usage=usage)

    def _run_batch(
        self, compiled: CompiledModule, fspec: FunctionSpec, lim: Limits, items: list[tuple[int, bytes]]
    ) -> list[CallResult | WasmqError]:
        assert fspec.batch is not None
        batch_export = fspec.batch
        chunk_limits = replace(lim, fuel=lim.fuel * len(items))

        def body(guest: Guest) -> list[bytes]:
            return call_batch(guest, batch_export, [data for _, data in items], lim.max_output_bytes, False)

        raws, usage, _, _ = self._run(compiled, chunk_limits, body)
        n = len(raws)
        share = Usage(fuel=usage.fuel // n, wall_ms=usage.wall_ms / n, memory_bytes=usage.memory_bytes)
        out: list[CallResult | WasmqError] = []
        for raw in raws:
            try:
                out.append(CallResult(output=decode_output(raw, max_bytes=lim.max_output_bytes), usage=share))
            except WasmqError as exc:
                out.append(exc)
        return out

    def _run(self, compiled: CompiledModule, lim: Limits, body: Body[T]) -> tuple[T, Usage, str, str]:
        """Instantiate in a fresh store under `lim`, run `body`, and classify any failure."""
        store: capi.RawStore | PublicStore
        limits = {
            "memory_bytes": lim.memory_mb * MIB,
            "table_elements": MAX_TABLE_ELEMENTS,
            "tables": MAX_TABLES,
            "instances": MAX_INSTANCES,
            "fuel": lim.fuel,
            "ticks": self.ticker.deadline_ticks(lim.timeout_ms),
        }
        if self.fast:
            store = capi.RawStore(self._engine_address, **limits)
        else:
            store = PublicStore(self.engine, **limits)
        guest: Guest | None = None
        started = time.perf_counter()
        try:
            stdout = stderr = None
            if compiled.needs_wasi:
                stdout = CapturedStream(self.settings.max_captured_output)
                stderr = CapturedStream(self.settings.max_captured_output)
                self.wasi.begin(timeout_ms=lim.timeout_ms, fuel=lim.fuel, stdout=stdout, stderr=stderr)
            try:
                if isinstance(store, capi.RawStore):
                    guest = store.instantiate(compiled.pre_address, compiled.signatures)
                else:
                    guest = store.instantiate(compiled.pre)
                if compiled.has_initialize:
                    guest.call("_initialize")
                result = body(guest)
            except Exception as exc:
                memory_bytes = guest.mem.size if guest is not None else None
                usage = self._usage(store, lim, started, memory_bytes or 0)
                error = classify(
                    exc,
                    memory_bytes=memory_bytes,
                    memory_cap=lim.memory_mb * MIB,
                    fuel=lim.fuel,
                    timeout_ms=lim.timeout_ms,
                )
                if error is None:
                    raise
                error.details.setdefault("usage", usage.to_dict())
                if error is exc:
                    raise
                raise error from None
            usage = self._usage(store, lim, started, guest.mem.size)
            return (
                result,
                usage,
                stdout.text() if stdout else "",
                stderr.text() if stderr else "",
            )
        finally:
            if compiled.needs_wasi:
                self.wasi.end()
            store.close()

    @staticmethod
    def _usage(store: capi.RawStore | PublicStore, lim: Limits, started: float, memory_bytes: int) -> Usage:
        wall_ms = (time.perf_counter() - started) * 1000.0
        return Usage(fuel=lim.fuel - store.fuel_left(), wall_ms=wall_ms, memory_bytes=memory_bytes)
