"""The `component` ABI: a WebAssembly component called through `wasmtime.component`, under the same limits.

Each call gets a fresh Store with fuel, an epoch deadline (covering instantiation) and a memory cap; the
canonical ABI copies the name in (through the component's `cabi_realloc`) and the answer out, validating
bounds and UTF-8; the host then checks the answer's size.

Failures are classified by `traps.classify_component_error` (wasmtime-py 50 gives components no trap codes;
see there). A refused `memory.grow` is invisible (it returns -1, the guest then aborts) and component
memories cannot be read from Python, so a trap is replayed once, in a fresh store with twice the memory cap:
a component gets no imports, so a call is deterministic, and if the larger cap changes the outcome the cap
caused it (`MemoryLimitExceeded`). The replay is bounded by the same fuel and deadline, so a trapping call can
take up to twice its deadline. `memory_bytes` in the usage is 0: not observable through wasmtime-py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import wasmtime
import wasmtime.component as wc

from ...errors import InvalidInput, InvalidOutput, ModuleRejected, ModuleTrap, WasmqError
from ...spec import MIB, Limits, ModuleSpec
from ..backend import Requested, call_each
from ..compiler import BoundedCompiler
from ..engine import EpochTicker
from ..precompiled import PrecompiledCache
from ..result import CallResult, Usage
from ..shared import ArtifactSource
from ..validate import check_output_length, encode_input
from .loader import ComponentLoader, LoadedComponent
from .traps import CallFacts, classify_component_error, root_cause, trap_code_of

MAX_TABLE_ELEMENTS = 100_000  # per table
# Per call: the component's core instances, and their tables. The components here have one instance and no
# table; toolchain output (componentize-py, jco) has a handful of each (main module, adapters, shims).
MAX_INSTANCES = 32
MAX_TABLES = 32
MAX_MEMORY_BYTES = 1 << 32


@dataclass(frozen=True)
class _Attempt:
    output: object
    error: BaseException | None
    phase: Literal["instantiate", "call"]
    fuel_used: int
    fuel_left: int
    elapsed_ms: float


class ComponentRunner:
    """Calls component functions, one fresh Store and instance per call, on a shared Engine and ticker."""

    def __init__(
        self, engine: wasmtime.Engine, ticker: EpochTicker, *, max_memories: int = 1, replay_traps: bool = True
    ) -> None:
        self.engine = engine
        self.ticker = ticker
        self.linker = wc.Linker(engine)  # empty: a component that imports anything cannot be instantiated
        self.max_memories = max_memories
        self.replay_traps = replay_traps

    def call(self, loaded: LoadedComponent, function: str, input: object, limits: Limits) -> CallResult:
        """Run `function(input)`; returns the checked answer or raises a `WasmqError`."""
        encode_input(input, max_bytes=limits.max_input_bytes)  # InvalidInput: not text, not UTF-8, or too large
        if not isinstance(input, str):  # encode_input refused it already; this narrows the type
            raise InvalidInput(f"input must be a string, not {type(input).__name__}")
        text = input
        if function not in loaded.functions:
            raise ModuleRejected(f"module {loaded.ref}: function {function!r} was not checked at load time")
        first = self._attempt(loaded, function, text, limits)
        usage = Usage(fuel=first.fuel_used, wall_ms=first.elapsed_ms)
        if first.error is None:
            if not isinstance(first.output, str):
                raise InvalidOutput(f"component answered {type(first.output).__name__}, not a string")
            error: WasmqError | None = None
            try:
                check_output_length(len(first.output.encode("utf-8")), max_bytes=limits.max_output_bytes)
            except InvalidOutput as exc:
                error = exc
            if error is None:
                return CallResult(output=first.output, usage=usage)
        else:
            facts = CallFacts(
                phase=first.phase,
                fuel=limits.fuel,
                fuel_left=first.fuel_left,
                elapsed_ms=first.elapsed_ms,
                timeout_ms=limits.timeout_ms,
                memory_cap=limits.memory_mb * MIB,
            )
            error = classify_component_error(first.error, facts)
            if error is None:
                raise first.error
            if type(error) is ModuleTrap and self.replay_traps and error.details.get("trap_code") != "instantiation":
                mattered = self._memory_mattered(loaded, function, text, limits, first)
                error = classify_component_error(first.error, replace(facts, memory_mattered=mattered)) or error
        error.details.setdefault("usage", usage.to_dict())
        raise error

    def _attempt(
        self, loaded: LoadedComponent, function: str, text: str, limits: Limits, *, memory_cap: int | None = None
    ) -> _Attempt:
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=memory_cap or limits.memory_mb * MIB,
            memories=self.max_memories,
            table_elements=MAX_TABLE_ELEMENTS,
            tables=MAX_TABLES,
            instances=MAX_INSTANCES,
        )
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(self.ticker.deadline_ticks(limits.timeout_ms))
        phase: Literal["instantiate", "call"] = "instantiate"
        output: object = None
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            try:
                instance = self.linker.instantiate(store, loaded.component)
                func = instance.get_func(store, loaded.functions[function])
                if func is None:
                    raise ModuleRejected(f"module {loaded.ref}: export {function!r} is not a function")
                phase = "call"
                output = func(store, text)  # the post-return function, if any, runs inside this call
            except (wasmtime.WasmtimeError, wasmtime.Trap, WasmqError) as exc:
                error = exc
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            left = store.get_fuel()
            return _Attempt(output, error, phase, limits.fuel - left, left, elapsed_ms)
        finally:
            store.close()

    def _memory_mattered(
        self, loaded: LoadedComponent, function: str, text: str, limits: Limits, first: _Attempt
    ) -> bool | None:
        """Replay the trapped call with twice the memory cap (same fuel, same deadline): the same trap after the
        same fuel means the cap played no part; any other outcome means it did. None when there is no verdict
        (no larger cap possible, or the replay ran out of time before reaching the point of the first failure).

        The replay gets the full fuel budget, not just what the first attempt used: fuel is not always written
        back to the store when a call is interrupted, so a smaller budget could run out early and look like a
        different outcome."""
        cap = limits.memory_mb * MIB
        bigger = min(2 * cap, MAX_MEMORY_BYTES)
        if bigger <= cap or first.error is None:
            return None
        second = self._attempt(loaded, function, text, limits, memory_cap=bigger)
        if second.error is None:
            return True
        if second.fuel_used == first.fuel_used and root_cause(second.error) == root_cause(first.error):
            return False
        if trap_code_of(second.error) == wasmtime.TrapCode.INTERRUPT and second.fuel_used <= first.fuel_used:
            return None
        return True


class ComponentBackend:
    """Components behind the sandbox's one backend interface; no batch convention yet (one instance per item)."""

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        ticker: EpochTicker,
        precompiled: PrecompiledCache,
        compiler: BoundedCompiler,
        fetch: Callable[[ModuleSpec], bytes],
        artifacts: ArtifactSource | None = None,
    ) -> None:
        self.loader = ComponentLoader(
            engine=engine, precompiled=precompiled, compiler=compiler, fetch=fetch, artifacts=artifacts
        )
        self.runner = ComponentRunner(engine, ticker)

    def ready(self, spec: ModuleSpec) -> bool:
        return self.loader.ready(spec)

    def load(self, spec: ModuleSpec) -> None:
        self.loader.loaded(spec)

    def call(self, spec: ModuleSpec, function: str, input: object, limits: Requested) -> CallResult:
        spec.function(function)
        lim = spec.limits.narrowed(limits)
        return self.runner.call(self.loader.loaded(spec), function, input, lim)

    def call_many(
        self, spec: ModuleSpec, function: str, inputs: Sequence[object], limits: Requested
    ) -> list[CallResult | WasmqError]:
        return call_each(self, spec, function, inputs, limits)
