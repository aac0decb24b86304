"""The `component` ABI: a WebAssembly component called through `wasmtime.component`, under the same limits.

Each call gets a fresh Store with fuel, an epoch deadline (covering instantiation) and a memory cap; the
canonical ABI copies the name in (through the component's `cabi_realloc`) and the answer out, validating
bounds and UTF-8; the host then checks the answer's size. A batch chunk (`call_many`) gets one Store and
instance, its function called once per item (the component model allows that after post-return). A component
that imports WASI 0.2 is linked by a second Linker, with wasmtime's WASI host, and every one of its stores is
given a WasiConfig before anything runs (worker/sandbox/component/wasi.py: what is granted, what is not
bounded).

Failures are classified by `traps.classify_component_error` (wasmtime-py 50 gives components no trap codes;
see there). A refused `memory.grow` is invisible (it returns -1, the guest then aborts) and component
memories cannot be read from Python, so a trap is replayed once, in a fresh store with twice the memory cap:
without a clock or randomness (a fixed env, no files) a call is deterministic, and if the larger cap changes
the outcome the cap caused it (`MemoryLimitExceeded`); a component granted a clock or randomness is not
replayed. The replay is bounded by the same fuel and deadline, so a trapping call can take up to twice its
deadline. `memory_bytes` in the usage is 0: wasmtime-py 50 exposes no core memory of a component instance
(component exports hold functions only; its C API has no access to an instance's core memories), and the
store's limiter is native with fixed limits (`wasmtime_store_limiter`: no growth callback), so the size a
call reached cannot be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import wasmtime
import wasmtime.component as wc

from ...errors import FuelExhausted, InvalidInput, InvalidOutput, ModuleRejected, ModuleTrap, WasmqError
from ...spec import MIB, Limits, ModuleSpec
from ..backend import Requested
from ..compiler import BoundedCompiler
from ..engine import EpochTicker
from ..precompiled import PrecompiledCache
from ..result import CallResult, Usage
from ..shared import ArtifactSource
from ..validate import check_output_length, encode_input
from .loader import ComponentLoader, LoadedComponent
from .traps import CallFacts, classify_component_error, root_cause, trap_code_of
from .wasi import StoreOutput, wasi_config

MAX_TABLE_ELEMENTS = 100_000  # per table
# Per call: the component's core instances, and their tables. The components here have one instance and no
# table; toolchain output has more: jco's greeting_js one instance, componentize-py's greeting_py 38 (its
# interpreter and libc are linked as shared libraries, one core instance each, plus adapters and shims).
MAX_INSTANCES = 64
MAX_TABLES = 32
MAX_MEMORY_BYTES = 1 << 32
_Store = tuple[wasmtime.Store, StoreOutput | None]


@dataclass(frozen=True)
class _Attempt:
    output: object
    error: BaseException | None
    phase: Literal["instantiate", "call"]
    fuel_used: int
    fuel_left: int
    elapsed_ms: float
    printed: StoreOutput | None = None


class ComponentRunner:
    """Calls component functions, one fresh Store and instance per call (or per batch chunk, `call_many`), on a
    shared Engine and ticker."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        ticker: EpochTicker,
        *,
        max_memories: int = 1,
        replay_traps: bool = True,
        max_captured_output: int = 64 * 1024,
    ) -> None:
        self.engine = engine
        self.ticker = ticker
        self.linker = wc.Linker(engine)  # empty: for components that import nothing
        self.wasi_linker = wc.Linker(engine)  # WASI 0.2 only: for components whose imports were checked
        self.wasi_linker.add_wasip2()
        self.max_memories = max_memories
        self.replay_traps = replay_traps
        self.max_captured_output = max_captured_output

    def call(self, loaded: LoadedComponent, function: str, input: object, limits: Limits) -> CallResult:
        """Run `function(input)`; returns the checked answer or raises a `WasmqError`."""
        text = self._text(loaded, function, input, limits)
        first = self._attempt(loaded, function, text, limits)
        usage = Usage(fuel=first.fuel_used, wall_ms=first.elapsed_ms)
        if first.error is None:
            try:
                return _answer(first.output, usage, limits, first.printed)
            except InvalidOutput as exc:
                exc.details.setdefault("usage", usage.to_dict())
                raise
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
        if type(error) is ModuleTrap and self._replayable(loaded) and error.details.get("trap_code") != "instantiation":
            mattered = self._memory_mattered(loaded, function, text, limits, first)
            error = classify_component_error(first.error, replace(facts, memory_mattered=mattered)) or error
        error.details.setdefault("usage", usage.to_dict())
        raise error

    def call_many(
        self, loaded: LoadedComponent, function: str, inputs: Sequence[object], limits: Limits
    ) -> list[CallResult | WasmqError]:
        """One result or typed error per input, in order: ONE fresh instance for the chunk, `function` called
        once per item in it, with the chunk's fuel (`limits.fuel` per item) and a fresh deadline per item.
        When a call traps (or the instance cannot be made), that instance is dropped and that item and every
        one after it runs alone (`call`), each in a fresh instance: no item's answer depends on another's."""
        texts: list[str | WasmqError] = []
        for item in inputs:
            try:
                texts.append(self._text(loaded, function, item, limits))
            except WasmqError as exc:
                texts.append(exc)
        results = self._chunk(loaded, function, texts, limits)
        for rest in texts[len(results) :]:
            try:
                results.append(rest if isinstance(rest, WasmqError) else self.call(loaded, function, rest, limits))
            except WasmqError as exc:
                results.append(exc)
        return results

    def _chunk(
        self, loaded: LoadedComponent, function: str, texts: list[str | WasmqError], limits: Limits
    ) -> list[CallResult | WasmqError]:
        """The items answered in one instance, in order, up to the first call that fails (or none at all)."""
        results: list[CallResult | WasmqError] = []
        budget = limits.fuel * sum(1 for t in texts if isinstance(t, str))
        if budget == 0:
            return results  # nothing to call: no store at all
        store, printed = self._new_store(loaded, replace(limits, fuel=budget))
        try:
            try:
                instance = self._instantiate(store, loaded)
                func = instance.get_func(store, loaded.functions[function])
            except (wasmtime.WasmtimeError, wasmtime.Trap):
                func = None
            if func is None:
                return results  # every item runs alone and gets its own typed error
            for text in texts:
                if isinstance(text, WasmqError):
                    results.append(text)
                    continue
                if printed is not None:
                    printed.reset()
                store.set_epoch_deadline(self.ticker.deadline_ticks(limits.timeout_ms))
                before = store.get_fuel()
                started = time.perf_counter()
                try:
                    output = func(store, text)
                except (wasmtime.WasmtimeError, wasmtime.Trap):
                    break  # the instance may be broken: this item and the rest run alone
                usage = Usage(fuel=before - store.get_fuel(), wall_ms=(time.perf_counter() - started) * 1000.0)
                try:
                    if usage.fuel > limits.fuel:  # paid from the others' share: alone it would have run out
                        raise FuelExhausted(f"call used up its fuel budget of {limits.fuel}")
                    results.append(_answer(output, usage, limits, printed))
                except WasmqError as exc:
                    exc.details.setdefault("usage", usage.to_dict())
                    results.append(exc)
            return results
        finally:
            store.close()

    def _text(self, loaded: LoadedComponent, function: str, input: object, limits: Limits) -> str:
        encode_input(input, max_bytes=limits.max_input_bytes)  # InvalidInput: not text, not UTF-8, or too large
        if not isinstance(input, str):  # encode_input refused it already; this narrows the type
            raise InvalidInput(f"input must be a string, not {type(input).__name__}")
        if function not in loaded.functions:
            raise ModuleRejected(f"module {loaded.ref}: function {function!r} was not checked at load time")
        return input

    def _replayable(self, loaded: LoadedComponent) -> bool:
        """Whether a replay sees the same call: no clock, no randomness (the env is fixed, no files)."""
        caps = loaded.capabilities
        return self.replay_traps and not (loaded.wasi and (caps.clock or caps.random))

    def _new_store(self, loaded: LoadedComponent, limits: Limits, *, memory_cap: int | None = None) -> _Store:
        """A Store under `limits`; a WASI component's gets its WasiConfig here, before anything can run."""
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
        printed = None
        if loaded.wasi:
            printed = StoreOutput(min(loaded.capabilities.output_bytes, self.max_captured_output))
            store.set_wasi(wasi_config(loaded.capabilities, printed))
        return store, printed

    def _instantiate(self, store: wasmtime.Store, loaded: LoadedComponent) -> wc.Instance:
        return (self.wasi_linker if loaded.wasi else self.linker).instantiate(store, loaded.component)

    def _attempt(
        self, loaded: LoadedComponent, function: str, text: str, limits: Limits, *, memory_cap: int | None = None
    ) -> _Attempt:
        store, printed = self._new_store(loaded, limits, memory_cap=memory_cap)
        phase: Literal["instantiate", "call"] = "instantiate"
        output: object = None
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            try:
                instance = self._instantiate(store, loaded)
                func = instance.get_func(store, loaded.functions[function])
                if func is None:
                    raise ModuleRejected(f"module {loaded.ref}: export {function!r} is not a function")
                phase = "call"
                output = func(store, text)  # the post-return function, if any, runs inside this call
            except (wasmtime.WasmtimeError, wasmtime.Trap, WasmqError) as exc:
                error = exc
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            left = store.get_fuel()
            return _Attempt(output, error, phase, limits.fuel - left, left, elapsed_ms, printed)
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


def _answer(output: object, usage: Usage, limits: Limits, printed: StoreOutput | None) -> CallResult:
    """The checked answer of one call (InvalidOutput: not a string, or over the output limit)."""
    if not isinstance(output, str):
        raise InvalidOutput(f"component answered {type(output).__name__}, not a string")
    check_output_length(len(output.encode("utf-8")), max_bytes=limits.max_output_bytes)
    if printed is None:
        return CallResult(output=output, usage=usage)
    return CallResult(output=output, usage=usage, stdout=printed.stdout.text(), stderr=printed.stderr.text())


class ComponentBackend:
    """Components behind the sandbox's one backend interface; a batch chunk shares one instance (`call_many`)."""

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        ticker: EpochTicker,
        precompiled: PrecompiledCache,
        compiler: BoundedCompiler,
        fetch: Callable[[ModuleSpec], bytes],
        artifacts: ArtifactSource | None = None,
        max_captured_output: int = 64 * 1024,
    ) -> None:
        self.loader = ComponentLoader(
            engine=engine, precompiled=precompiled, compiler=compiler, fetch=fetch, artifacts=artifacts
        )
        self.runner = ComponentRunner(engine, ticker, max_captured_output=max_captured_output)

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
        spec.function(function)
        lim = spec.limits.narrowed(limits)
        return self.runner.call_many(self.loader.loaded(spec), function, inputs, lim)
