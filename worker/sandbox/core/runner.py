"""Core modules, one call at a time: a fresh Store and instance, fuel, an epoch deadline, a memory cap.

A single call never shares an instance with another call. A batch chunk (`call_many`) shares one instance
among the items of that chunk only, through the function's `F_many` export; if that call fails, every item
is re-run alone so each gets its own result or typed error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import compress, count, repeat
from typing import TypeVar, cast

import wasmtime

from ...config import Settings
from ...errors import WasmqError
from ...spec import MIB, Capabilities, FunctionSpec, Limits, ModuleSpec
from .. import capi
from ..backend import Requested, call_each
from ..compiler import BoundedCompiler
from ..engine import EpochTicker
from ..guest import Guest, PublicStore
from ..precompiled import PrecompiledCache
from ..result import CallResult, Usage, sharing
from ..shared import ArtifactSource
from ..traps import classify
from ..validate import decode_output, decode_outputs, encode_input, encode_inputs
from ..wasi import CapturedStream
from ..wasi_host import BoundedWasi
from .abi import ADAPTERS, call_batch
from .loader import CompiledModule, CoreLoader

T = TypeVar("T")
MAX_TABLE_ELEMENTS = 100_000  # per table: 800 KB of host memory that the memory cap does not count
MAX_TABLES = 4  # per instance: toolchains emit one (reference types allow more)
MAX_INSTANCES = 1  # one core module per store
Body = Callable[[Guest], T]


class CoreBackend:
    """Runs core-module calls on the process's Engine and ticker; WASI linked with only what is granted."""

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
        # The C-API hot path (worker/sandbox/capi.py) unless this wasmtime-py build does not match it.
        self.fast = fast and capi.AVAILABLE
        self._engine_address = capi.address(engine) if self.fast else 0
        self.linker = wasmtime.Linker(engine)
        self.wasi = BoundedWasi()  # every WASI function bounded by the call's deadline and fuel
        self.wasi.define(self.linker)
        self.loader = CoreLoader(
            engine=engine, linker=self.linker, precompiled=precompiled, compiler=compiler, fetch=fetch,
            artifacts=artifacts,
        )  # fmt: skip

    def compiled(self, spec: ModuleSpec) -> CompiledModule:
        return self.loader.compiled(spec)

    def ready(self, spec: ModuleSpec) -> bool:
        return self.loader.ready(spec)

    def load(self, spec: ModuleSpec) -> None:
        self.loader.compiled(spec)

    def prepare(
        self, spec: ModuleSpec, function: str, limits: Requested
    ) -> tuple[CompiledModule, FunctionSpec, Limits]:
        """Check and compile what a call needs; raises the typed error for a bad request."""
        fspec = spec.function(function)
        lim = spec.limits.narrowed(limits)
        return self.loader.compiled(spec), fspec, lim

    def call(self, spec: ModuleSpec, function: str, input: object, limits: Requested) -> CallResult:
        compiled, fspec, lim = self.prepare(spec, function, limits)
        data = encode_input(input, max_bytes=lim.max_input_bytes)
        adapter = ADAPTERS[fspec.abi]

        def body(guest: Guest) -> str:
            # free=False: the instance is dropped right after this call (see worker/sandbox/core/abi.py).
            raw = adapter(guest, fspec.name, data, lim.max_output_bytes, False)
            return decode_output(raw, max_bytes=lim.max_output_bytes)

        output, usage, out, err = self._run(compiled, lim, body, spec.capabilities)
        return CallResult(output=output, usage=usage, stdout=out, stderr=err)

    def call_many(
        self, spec: ModuleSpec, function: str, inputs: Sequence[object], limits: Requested
    ) -> list[CallResult | WasmqError]:
        """One result or typed error per input, in order; uses the batch export when the function has one."""
        compiled, fspec, lim = self.prepare(spec, function, limits)
        encoded = encode_inputs(inputs, max_bytes=lim.max_input_bytes)
        results: list[CallResult | WasmqError | bytes] = list(encoded)  # an input's bytes until it is answered
        accepted = list(map(isinstance, encoded, repeat(bytes)))  # passes in C: a chunk is thousands of items
        pending = list(compress(count(), accepted))
        if fspec.batch and len(pending) > 1:
            try:
                batch = self._run_batch(compiled, fspec, lim, cast("list[bytes]", list(compress(encoded, accepted))))
            except WasmqError:
                pass  # the chunk failed as a whole: fall back to one instance per item below
            else:
                if len(pending) == len(results):
                    return batch
                for index, result in zip(pending, batch, strict=True):
                    results[index] = result
                pending = []
        alone = call_each(self, spec, function, [inputs[i] for i in pending], limits)
        for index, result in zip(pending, alone, strict=True):
            results[index] = result
        return cast("list[CallResult | WasmqError]", results)  # every input answered by now

    def _run_batch(
        self, compiled: CompiledModule, fspec: FunctionSpec, lim: Limits, items: list[bytes]
    ) -> list[CallResult | WasmqError]:
        assert fspec.batch is not None
        batch_export = fspec.batch
        chunk_limits = replace(lim, fuel=lim.fuel * len(items))

        def body(guest: Guest) -> list[bytes]:
            return call_batch(guest, batch_export, items, lim.max_output_bytes, False)

        raws, usage, _, _ = self._run(compiled, chunk_limits, body, compiled.spec.capabilities)
        n = len(raws)
        share = Usage(fuel=usage.fuel // n, wall_ms=usage.wall_ms / n, memory_bytes=usage.memory_bytes)
        return sharing(decode_outputs(raws, max_bytes=lim.max_output_bytes), share)

    def _run(
        self, compiled: CompiledModule, lim: Limits, body: Body[T], capabilities: Capabilities
    ) -> tuple[T, Usage, str, str]:
        """Instantiate in a fresh store under `lim` and the module's WASI grants, run `body`, classify failures."""
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
                kept = min(capabilities.output_bytes, self.settings.max_captured_output)
                stdout, stderr = CapturedStream(kept), CapturedStream(kept)
                self.wasi.begin(
                    timeout_ms=lim.timeout_ms, fuel=lim.fuel, stdout=stdout, stderr=stderr, capabilities=capabilities
                )
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
                usage = _usage(store, lim, started, memory_bytes or 0)
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
            usage = _usage(store, lim, started, guest.mem.size)
            return result, usage, stdout.text() if stdout else "", stderr.text() if stderr else ""
        finally:
            if compiled.needs_wasi:
                self.wasi.end()
            store.close()


def _usage(store: capi.RawStore | PublicStore, lim: Limits, started: float, memory_bytes: int) -> Usage:
    wall_ms = (time.perf_counter() - started) * 1000.0
    return Usage(fuel=lim.fuel - store.fuel_left(), wall_ms=wall_ms, memory_bytes=memory_bytes)
