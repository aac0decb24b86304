"""The `component` ABI: a WebAssembly component called through `wasmtime.component`, under the same limits.

A component is compiled once per Engine and checked against the WIT world its manifest names: it may import
nothing (components are granted no host functions), and every function the manifest declares must be
exported with the world's signature, which must be `func(string) -> string`, the one shape the host can call.
Each call gets a fresh Store with fuel, an epoch deadline (covering instantiation) and a memory cap; the
canonical ABI copies the name in (through the component's `cabi_realloc`) and the answer out, validating
bounds and UTF-8; the host then checks the answer's size.

Failures are classified by `component_traps.classify_component_error` (wasmtime-py 50 gives components no
trap codes; see there). A refused `memory.grow` is invisible (it returns -1, the guest then aborts) and component
memories cannot be read from Python, so a trap is replayed once, in a fresh store with twice the memory cap:
a component gets no imports, so a call is deterministic, and if the larger cap changes the outcome the cap
caused it (`MemoryLimitExceeded`). The replay is bounded by the same fuel and deadline, so a trapping call can
take up to twice its deadline. `memory_bytes` in the usage is 0: not observable through wasmtime-py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import wasmtime
import wasmtime.component as wc

from ..errors import InvalidInput, InvalidOutput, ModuleRejected, ModuleTrap, WasmqError
from ..manifest import MIB, Limits
from .component_traps import CallFacts, classify_component_error, root_cause, trap_code_of
from .engine import EpochTicker
from .validate import check_output_length, encode_input
from .wit import WitWorld

CALLABLE = (("string",), "string")  # func(string) -> string: what `ComponentRunner.call` passes and expects
MAX_TABLE_ELEMENTS = 100_000  # per table
# Per call: the component's core instances, and their tables. The components here have one instance and no
# table; toolchain output (componentize-py, jco) has a handful of each (main module, adapters, shims).
MAX_INSTANCES = 32
MAX_TABLES = 32
MAX_MEMORY_BYTES = 1 << 32
_CORE = b"\x00asm\x01\x00\x00\x00"  # magic + version 1, layer 0: a core module (components: 0d 00 01 00)
_PRIMITIVES = {
    wc.Bool: "bool", wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64", wc.U8: "u8", wc.U16: "u16",
    wc.U32: "u32", wc.U64: "u64", wc.F32: "f32", wc.F64: "f64", wc.Char: "char", wc.String: "string",
}  # fmt: skip


# -- loading and checking ----------------------------------------------------------------------------


def wit_type(ty: wc.ValType) -> str:
    """A wasmtime component value type as WIT text, in the form `worker.sandbox.wit` produces."""
    for cls, name in _PRIMITIVES.items():
        if isinstance(ty, cls):
            return name
    if isinstance(ty, wc.ListType):
        return f"list<{wit_type(ty.element)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{wit_type(ty.payload)}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(wit_type(t) for t in ty.elements)}>"
    if isinstance(ty, wc.ResultType):
        ok = wit_type(ty.ok) if ty.ok is not None else "_"
        err = wit_type(ty.err) if ty.err is not None else None
        return "result" if ok == "_" and err is None else f"result<{ok}{f', {err}' if err else ''}>"
    return type(ty).__name__.removesuffix("Type").lower()  # record, variant, enum, flags, own, borrow, ...


def _fmt(types: tuple[tuple[str, ...], str | None]) -> str:
    return f"func({', '.join(types[0])})" + (f" -> {types[1]}" if types[1] is not None else "")


@dataclass(frozen=True)
class LoadedComponent:
    """A compiled, checked component; `functions` maps each declared function to its export index."""

    ref: str
    component: wc.Component
    world: WitWorld
    functions: dict[str, wc.ExportIndex]


def compile_component(engine: wasmtime.Engine, wasm: bytes, *, ref: str) -> wc.Component:
    """Compile `wasm` as a component, or refuse it (`ModuleRejected`)."""
    try:
        return wc.Component(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        hint = " (its header is a core module's: `wasm-tools component new` makes one)" if wasm[:8] == _CORE else ""
        raise ModuleRejected(f"module {ref} is not a valid WebAssembly component{hint}: {root_cause(exc)}") from None


def check_component(
    engine: wasmtime.Engine, component: wc.Component, *, ref: str, world: WitWorld, functions: Iterable[str]
) -> LoadedComponent:
    """Refuse a component that imports anything, or whose exports do not match `world` for `functions`."""
    if world.imports:
        raise ModuleRejected(
            f"module {ref}: world {world.ref} imports {sorted(world.imports)}; components are granted no imports"
        )
    ctype = component.type
    imports = sorted(ctype.imports(engine))
    if imports:
        raise ModuleRejected(f"module {ref} imports {imports}; components are granted no imports")
    exports = ctype.exports(engine)
    indexes: dict[str, wc.ExportIndex] = {}
    for name in functions:
        declared = world.exports.get(name)
        if declared is None:
            raise ModuleRejected(f"module {ref}: world {world.ref} does not export a function {name!r}")
        if declared.types != CALLABLE:
            raise ModuleRejected(
                f"module {ref}: world {world.ref} declares {declared}; the component ABI calls only {_fmt(CALLABLE)}"
            )
        found = exports.get(name)
        ftype = found.ty if found is not None else None
        if not isinstance(ftype, wc.FuncType):
            what = "does not export it" if found is None else f"exports it as a {type(ftype).__name__}"
            raise ModuleRejected(f"module {ref}: world {world.ref} exports function {name!r}, the component {what}")
        actual = (
            tuple(wit_type(t) for _, t in ftype.params),
            wit_type(ftype.result) if ftype.result is not None else None,
        )
        if actual != declared.types:
            raise ModuleRejected(
                f"module {ref}: export {name!r} is {_fmt(actual)}, world {world.ref} declares {_fmt(declared.types)}"
            )
        index = component.get_export_index(name)
        if index is None:  # the type lists it, so this would be a wasmtime bug
            raise ModuleRejected(f"module {ref}: export {name!r} has no export index")
        indexes[name] = index
    return LoadedComponent(ref=ref, component=component, world=world, functions=indexes)


def load_component(
    engine: wasmtime.Engine, wasm: bytes, *, ref: str, world: WitWorld, functions: Iterable[str]
) -> LoadedComponent:
    """Compile and check in one step."""
    component = compile_component(engine, wasm, ref=ref)
    return check_component(engine, component, ref=ref, world=world, functions=functions)


# -- running calls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentUsage:
    """What one call consumed (the same shape as `worker.sandbox.runtime.Usage`).

    After an epoch interrupt `fuel` undercounts: wasmtime does not write the fuel counter back to the store
    when the deadline stops the guest (a loop stopped after 100 ms reports a handful of fuel units)."""

    fuel: int
    wall_ms: float
    memory_bytes: int = 0  # component memories are not observable through wasmtime-py

    def to_dict(self) -> dict[str, Any]:
        return {"fuel": self.fuel, "wall_ms": round(self.wall_ms, 3), "memory_bytes": self.memory_bytes}


@dataclass(frozen=True)
class ComponentResult:
    output: str
    usage: ComponentUsage

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "usage": self.usage.to_dict()}


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

    def call(self, loaded: LoadedComponent, function: str, input: object, limits: Limits) -> ComponentResult:
        """Run `function(input)`; returns the checked answer or raises a `WasmqError`."""
        encode_input(input, max_bytes=limits.max_input_bytes)  # InvalidInput: not text, not UTF-8, or too large
        if not isinstance(input, str):  # encode_input refused it already; this narrows the type
            raise InvalidInput(f"input must be a string, not {type(input).__name__}")
        text = input
        if function not in loaded.functions:
            raise ModuleRejected(f"module {loaded.ref}: function {function!r} was not checked at load time")
        first = self._attempt(loaded, function, text, limits)
        usage = ComponentUsage(fuel=first.fuel_used, wall_ms=first.elapsed_ms)
        if first.error is None:
            if not isinstance(first.output, str):
                raise InvalidOutput(f"component answered {type(first.output).__name__}, not a string")
            error: WasmqError | None = None
            try:
                check_output_length(len(first.output.encode("utf-8")), max_bytes=limits.max_output_bytes)
            except InvalidOutput as exc:
                error = exc
            if error is None:
                return ComponentResult(output=first.output, usage=usage)
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
