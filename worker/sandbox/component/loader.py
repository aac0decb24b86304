"""Components by content hash: sha256-verified, checked against their WIT world, compiled once per process.

A component is compiled once per Engine and checked against the WIT world its manifest names: it may import
only WASI 0.2 interfaces its publication grants (worker/sandbox/component/wasi.py; no other host function),
and every function the manifest declares must be
exported with the world's signature, which must be `func(string) -> string`, the one shape the host can call.
A rejection is remembered and reported per job as `ModuleRejected`, so one bad component cannot keep a worker
from serving the rest. Compiled components are kept on disk like modules (worker/sandbox/precompiled.py); the
WIT check runs on every load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import wasmtime
import wasmtime.component as wc

from ...errors import ConfigError, ModuleRejected
from ...spec import Capabilities, ModuleSpec
from ..compiler import BoundedCompiler
from ..loading import Remembered, load_compiled, verified
from ..precompiled import PrecompiledCache
from ..shared import ArtifactSource
from .meter import METER_EXPORT, MeterNameTaken, compile_metered
from .traps import root_cause
from .wasi import check_imports
from .wit import WitWorld, find_world

CALLABLE = (("string",), "string")  # func(string) -> string: what `ComponentRunner.call` passes and expects
_CORE = b"\x00asm\x01\x00\x00\x00"  # magic + version 1, layer 0: a core module (components: 0d 00 01 00)
_PRIMITIVES = {
    wc.Bool: "bool", wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64", wc.U8: "u8", wc.U16: "u16",
    wc.U32: "u32", wc.U64: "u64", wc.F32: "f32", wc.F64: "f64", wc.Char: "char", wc.String: "string",
}  # fmt: skip


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
    """A compiled, checked component; `functions` maps each declared function to its export index; `wasi`:
    whether it imports WASI 0.2 (then its stores get a WasiConfig granting `capabilities`); `meter`: the
    export index of the host's memory meter (worker/sandbox/component/meter.py), None if it has none."""

    ref: str
    component: wc.Component
    world: WitWorld
    functions: dict[str, wc.ExportIndex]
    wasi: bool = False
    capabilities: Capabilities = field(default_factory=Capabilities)
    meter: wc.ExportIndex | None = None


def compile_component(engine: wasmtime.Engine, wasm: bytes, *, ref: str) -> wc.Component:
    """Compile `wasm` as a component, with the host's memory meter where it can have one, or refuse it
    (`ModuleRejected`)."""
    try:
        return compile_metered(engine, wasm)
    except MeterNameTaken as exc:
        raise ModuleRejected(f"module {ref}: {exc}") from None
    except wasmtime.WasmtimeError as exc:
        hint = " (its header is a core module's: `wasm-tools component new` makes one)" if wasm[:8] == _CORE else ""
        raise ModuleRejected(f"module {ref} is not a valid WebAssembly component{hint}: {root_cause(exc)}") from None


def check_component(
    engine: wasmtime.Engine,
    component: wc.Component,
    *,
    ref: str,
    world: WitWorld,
    functions: Iterable[str],
    capabilities: Capabilities | None = None,
) -> LoadedComponent:
    """Refuse a component that imports anything but granted WASI 0.2 interfaces, or whose exports do not
    match `world` for `functions`."""
    if world.imports:
        raise ModuleRejected(
            f"module {ref}: world {world.ref} imports {sorted(world.imports)}; components are granted no host functions"
        )
    caps = capabilities or Capabilities()
    ctype = component.type
    wasi = check_imports(ctype.imports(engine), ref=ref, capabilities=caps)
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
    return LoadedComponent(
        ref=ref,
        component=component,
        world=world,
        functions=indexes,
        wasi=wasi,
        capabilities=caps,
        meter=_meter(component, exports[METER_EXPORT].ty if METER_EXPORT in exports else None),
    )


def _meter(component: wc.Component, ftype: wc.ComponentItem | None) -> wc.ExportIndex | None:
    """The host's memory meter (a component exporting its name itself is refused when compiled), if it is there
    with the meter's type, `func() -> u32`."""
    if not isinstance(ftype, wc.FuncType) or list(ftype.params) or not isinstance(ftype.result, wc.U32):
        return None
    return component.get_export_index(METER_EXPORT)


def load_component(
    engine: wasmtime.Engine,
    wasm: bytes,
    *,
    ref: str,
    world: WitWorld,
    functions: Iterable[str],
    capabilities: Capabilities | None = None,
) -> LoadedComponent:
    """Compile and check in one step."""
    component = compile_component(engine, wasm, ref=ref)
    return check_component(engine, component, ref=ref, world=world, functions=functions, capabilities=capabilities)


class ComponentLoader:
    """Loaded components of one Engine; `fetch(spec)` supplies a component's bytes."""

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        precompiled: PrecompiledCache,
        compiler: BoundedCompiler,
        fetch: Callable[[ModuleSpec], bytes],
        artifacts: ArtifactSource | None = None,
    ) -> None:
        self.engine = engine
        self.precompiled = precompiled
        self.compiler = compiler  # compiles in a child process under limits (worker/sandbox/compiler.py)
        self.fetch = fetch
        self.artifacts = artifacts
        self.loaded = Remembered(self._load)

    def ready(self, spec: ModuleSpec) -> bool:
        """Whether `loaded(spec)` needs no compiling: loaded (or rejected) already, or authentic on disk."""
        return self.loaded.has(spec) or self.precompiled.has(spec)

    def _load(self, spec: ModuleSpec) -> LoadedComponent:
        if spec.wit is None or spec.world is None:
            raise ModuleRejected(f"module {spec.ref}: a component needs 'wit' and 'world' in its manifest entry")
        wasm = verified(spec, self.fetch(spec))
        try:
            world = find_world(spec.wit, spec.world, where=f"the WIT of {spec.ref}")
        except ConfigError as exc:
            raise ModuleRejected(f"module {spec.ref}: {exc.message}") from None
        component, _ = load_compiled(
            spec, wasm, "component", lambda data: wc.Component.deserialize(self.engine, data),
            precompiled=self.precompiled, compiler=self.compiler, artifacts=self.artifacts,
        )  # fmt: skip
        return check_component(
            self.engine,
            component,
            ref=spec.ref,
            world=world,
            functions=list(spec.functions),
            capabilities=spec.capabilities,
        )
