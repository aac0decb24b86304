"""The memory meter of a component: one export the host adds, so a call's `memory_bytes` is real.

wasmtime-py 50 gives a host no core memory of a component instance (component exports hold functions, and the
C API has no way to a component instance's core instances), and the store's limiter is native with fixed
limits (`wasmtime_store_limiter`, no growth callback). So before a component is compiled, the host appends
six small sections to it (`with_meter`), all of them after the component's own definitions, none changing
them. Where the component's first core memory is `(alias core export $inst "NAME" (core memory))`:

    (core module $m (import "m" "NAME" (memory 0)) (func (export "p") (result i32) memory.size))
    (core instance $i (instantiate $m (with "m" (instance $inst))))
    (alias core export $i "p" (core func $p))
    (type $t (func (result u32)))
    (func $f (type $t) (canon lift (core func $p)))
    (export "wasmq-memory-pages" (func $f))

and after each call the runner calls that export in the same store (`memory_bytes`): the memory's size in
pages, times 64 KiB, the same meaning as for core modules (the memory's size after the call: memories never
shrink, so it is also the call's peak). A store holds at most one memory (the runner's store limits), so the
component's first core memory is the one its calls use (a component's core memories all come from such
aliases: components import and export none). The new indices come from counting each index space
over the component's top-level sections; wasmtime validates the result as it compiles it.

A component the meter cannot be added to still runs, with `memory_bytes` 0: one whose memory is not at its
top level (inside a nested component), one with an encoding this reader does not know (`with_meter` answers
None), or one whose metered bytes wasmtime refuses (`compile` then compiles the bytes as published). A
component that exports `wasmq-memory-pages` itself is refused (`MeterNameTaken`): the host must be able to
trust that export.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import wasmtime
import wasmtime.component as wc

from ..wasm_bytes import leb128, name, section

METER_EXPORT: Final = "wasmq-memory-pages"
PAGE_BYTES: Final = 65536
METER_INSTANCES: Final = 1  # core instances the meter adds to a component's store
METER_FUEL: Final = 10_000  # what the meter's call may spend (a few instructions and the call's own cost)
_PREAMBLE: Final = b"\x00asm\x0d\x00\x01\x00"  # magic, version 0x0d, layer 1: a component
_HELPER_TYPES: Final = bytes.fromhex("0105016000017f")  # type section: (func (result i32))
_HELPER_BODY: Final = bytes.fromhex("03020100070501017000000a060104003f000b")  # func, export "p", memory.size
_CORE_FUNC, _CORE_MEMORY, _CORE_MODULE, _CORE_INSTANCE = (0, 0x00), (0, 0x02), (0, 0x11), (0, 0x12)
_FUNC, _TYPE = (1,), (3,)


class MeterNameTaken(ValueError):
    """The component exports the meter's name itself."""


class _Unknown(Exception):
    """An encoding this reader does not know (or bytes that are not a component): no meter."""


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Unknown("unexpected end")
        self.pos += 1
        return self.data[self.pos - 1]

    def u32(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise _Unknown("LEB128 too long")

    def name(self) -> bytes:
        n = self.u32()
        if self.pos + n > self.end:
            raise _Unknown("name past the end")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def sort(self) -> tuple[int, ...]:
        s = self.byte()
        return (0, self.byte()) if s == 0 else (s,)

    def nameattributes(self) -> bytes:
        kind = self.byte()
        if kind not in (0, 1, 2):
            raise _Unknown(f"name kind {kind}")
        text = self.name()
        if kind == 2:
            for _ in range(self.u32()):  # attributes: implements, version suffix, external id: each a name
                if self.byte() not in (0, 1, 2):
                    raise _Unknown("attribute")
                self.name()
        return text

    def externtype(self) -> tuple[int, ...]:
        kind = self.byte()
        if kind == 0:
            if self.byte() != 0x11:
                raise _Unknown("core extern type")
            self.u32()
            return _CORE_MODULE
        if kind in (1, 4, 5):
            self.u32()
        elif kind in (2, 3):  # value bound / type bound: 0x00 index, or (value) a type / (type) sub resource
            if self.byte() == 0 or kind == 2:
                self.u32()
        else:
            raise _Unknown(f"extern type {kind}")
        return (kind,)

    def opts(self) -> None:
        for _ in range(self.u32()):
            opt = self.byte()
            if opt in (3, 4, 5, 7):
                self.u32()
            elif opt not in (0, 1, 2, 6):
                raise _Unknown(f"canon option {opt}")


# canon opcode -> what follows it ("f": a u32, "o": options, "b": one byte, "r": a result list)
_CANON: Final = {
    0x01: "bfo", 0x02: "f", 0x03: "f", 0x04: "f", 0x05: "", 0x06: "b", 0x09: "ro", 0x0A: "bf", 0x0B: "bf",
    0x0C: "b", 0x0D: "", 0x0E: "f", 0x0F: "fo", 0x10: "fo", 0x11: "fb", 0x12: "fb", 0x13: "f", 0x14: "f",
    0x15: "f", 0x16: "fo", 0x17: "fo", 0x18: "fb", 0x19: "fb", 0x1A: "f", 0x1B: "f", 0x1C: "o", 0x1D: "o",
    0x1E: "", 0x1F: "", 0x20: "bf", 0x21: "bf", 0x22: "", 0x23: "", 0x24: "", 0x25: "", 0x26: "", 0x27: "ff",
    0x28: "", 0x29: "b", 0x2A: "b", 0x2B: "b", 0x2C: "b", 0x2D: "b", 0x40: "bf", 0x41: "bff", 0x42: "b",
}  # fmt: skip
_STEP: Final[dict[str, Callable[[_Reader], object]]] = {
    "f": _Reader.u32,
    "o": _Reader.opts,
    "b": _Reader.byte,
    "r": lambda r: r.u32() if r.byte() == 0 else r.byte(),
}


class _Spaces:
    """What the meter needs to know of a component: how many definitions each index space it adds to holds at
    the end, the names of its exports, and where its first core memory comes from (core instance, name)."""

    def __init__(self) -> None:
        self.count = dict.fromkeys((_CORE_FUNC, _CORE_MEMORY, _CORE_MODULE, _CORE_INSTANCE, _FUNC, _TYPE), 0)
        self.exports: set[bytes] = set()
        self.memory: tuple[int, bytes] | None = None

    def add(self, sort: tuple[int, ...], n: int = 1) -> None:
        if sort in self.count:
            self.count[sort] += n


def _aliases(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        sort, target = r.sort(), r.byte()
        if target not in (0, 1, 2):
            raise _Unknown(f"alias target {target}")
        instance = r.u32()  # outer: how many scopes out; (core) export: the instance
        export = r.name() if target != 2 else b""
        if target == 2:
            r.u32()  # the index there
        if sort == _CORE_MEMORY and target == 1 and spaces.memory is None:
            spaces.memory = (instance, export)
        spaces.add(sort)


def _canons(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        op = r.byte()
        if op == 0:  # lift: 0x00 f opts type -> a component function
            r.byte()
            r.u32()
            r.opts()
            r.u32()
            spaces.add(_FUNC)
            continue
        if op not in _CANON:
            raise _Unknown(f"canon opcode {op:#x}")
        for step in _CANON[op]:
            _STEP[step](r)
        spaces.add(_CORE_FUNC)  # every other canon definition is a core function


def _imports(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        r.nameattributes()
        spaces.add(r.externtype())


def _exports(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):  # every export is a new index of its sort
        spaces.exports.add(r.nameattributes())
        sort = r.sort()
        r.u32()
        if r.byte() == 1:
            r.externtype()
        spaces.add(sort)


def _vector_of(sort: tuple[int, ...]) -> Callable[[_Reader, _Spaces], None]:
    def add(r: _Reader, spaces: _Spaces) -> None:
        spaces.add(sort, r.u32())

    return add


def _one_module(r: _Reader, spaces: _Spaces) -> None:
    spaces.add(_CORE_MODULE)


def _skip(r: _Reader, spaces: _Spaces) -> None:
    pass


# section id -> what it adds: custom, core type, component, instance and start sections add nothing the meter uses
_SECTIONS: Final[dict[int, Callable[[_Reader, _Spaces], None]]] = {
    0: _skip, 1: _one_module, 2: _vector_of(_CORE_INSTANCE), 3: _skip, 4: _skip, 5: _skip, 6: _aliases,
    7: _vector_of(_TYPE), 8: _canons, 9: _skip, 10: _imports, 11: _exports,
}  # fmt: skip


def _read(wasm: bytes) -> _Spaces:
    if wasm[:8] != _PREAMBLE:
        raise _Unknown("not a component of the version this reader knows")
    spaces = _Spaces()
    top = _Reader(wasm, 8)
    while top.pos < top.end:
        section, size = top.byte(), top.u32()
        if top.pos + size > top.end:
            raise _Unknown("section past the end")
        handler = _SECTIONS.get(section)
        if handler is None:
            raise _Unknown(f"section {section}")
        handler(_Reader(wasm, top.pos, top.pos + size), spaces)
        top.pos += size
    return spaces


def with_meter(wasm: bytes) -> bytes | None:
    """`wasm` with the meter export appended; None when it cannot be added (see the module docstring)."""
    try:
        spaces = _read(wasm)
    except _Unknown:
        return None
    if METER_EXPORT.encode() in spaces.exports:
        raise MeterNameTaken(f"it exports {METER_EXPORT!r}, a name the host reserves for its memory meter")
    if spaces.memory is None:
        return None
    count, (owner, memory_name) = spaces.count, spaces.memory
    imports = b"\x01" + name(b"m") + name(memory_name) + b"\x02\x00\x00"  # (import "m" NAME (memory 0))
    helper = b"\x00asm\x01\x00\x00\x00" + _HELPER_TYPES + section(2, imports) + _HELPER_BODY
    instantiate = b"\x01\x00" + leb128(count[_CORE_MODULE]) + b"\x01" + name(b"m") + b"\x12" + leb128(owner)
    return b"".join(
        (
            wasm,
            section(1, helper),
            section(2, instantiate),
            section(6, b"\x01\x00\x00\x01" + leb128(count[_CORE_INSTANCE]) + name(b"p")),  # alias $i "p" (core func)
            section(7, b"\x01\x40\x00\x00\x79"),  # (type (func (result u32)))
            section(8, b"\x01\x00\x00" + leb128(count[_CORE_FUNC]) + b"\x00" + leb128(count[_TYPE])),
            section(11, b"\x01\x00" + name(METER_EXPORT.encode()) + b"\x01" + leb128(count[_FUNC]) + b"\x00"),
        )
    )


def compile_metered(engine: wasmtime.Engine, wasm: bytes) -> wc.Component:
    """`wasm` compiled with the meter when it can have one, else as it is (raises `MeterNameTaken`, or
    wasmtime's error for bytes that are not a valid component)."""
    metered = with_meter(wasm)
    if metered is not None:
        try:
            return wc.Component(engine, metered)
        except wasmtime.WasmtimeError:
            pass  # an encoding this reader misread: wasmtime's own verdict on the published bytes follows
    component = wc.Component(engine, wasm)
    if METER_EXPORT in component.type.exports(engine):
        raise MeterNameTaken(f"it exports {METER_EXPORT!r}, a name the host reserves for its memory meter")
    return component


def memory_bytes(store: wasmtime.Store, instance: wc.Instance, meter: wc.ExportIndex | None, ticks: int) -> int:
    """The size of the instance's memory now, through the meter (0 without one, or if it cannot answer: an
    instance that trapped cannot be entered again). The meter's call gets its own fuel and deadline (`ticks`),
    and the store's fuel is put back as it was: the guest's budget does not pay for the host's meter."""
    if meter is None:
        return 0
    left = store.get_fuel()
    try:
        func = instance.get_func(store, meter)
        if func is None:
            return 0
        store.set_fuel(left + METER_FUEL)
        store.set_epoch_deadline(ticks)
        pages = func(store)
    except (wasmtime.WasmtimeError, wasmtime.Trap):
        return 0
    finally:
        store.set_fuel(left)
    return pages * PAGE_BYTES if isinstance(pages, int) else 0
