"""One Extism call's store: the kernel instantiated first, the call's settings and input written into its memory
at kernel.SETTINGS_AT (no call into the kernel: it reads them on the plugin's first kernel call), then the plugin
linked to the kernel's exports and instantiated, on the C API (`NativeCall`) or on wasmtime-py's public API
(`PublicCall`, its twin: same steps, slower).

The store allows two memories (the kernel's and the plugin's; the kernel comes first, so a plugin with a
second memory of its own is refused), each under the call's memory cap, two instances and `TABLES` tables
(what the instance pool holds for one store: worker/sandbox/pool.py).
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple

import wasmtime

from ...errors import InvalidOutput
from .. import pool
from ..memory import GuestMemory
from . import kernel, native

MEMORIES = 2
INSTANCES = 2  # the kernel and the plugin
TABLES = pool.STORE_TABLES
_MODULE = kernel.MODULE.encode()
_ONE_COPY = 64 * 1024  # an input up to this size goes into the kernel with its settings in one copy


class Finish(NamedTuple):
    """What a call left, read before its store goes: the kernel's record (None if the kernel never started),
    the output (empty when its length is over the cap: the caller refuses it by `record.output_length`), the
    error message's bytes, the kernel's and the plugin's memory sizes, the fuel left."""

    record: kernel.Record | None
    output: bytes
    error: bytes | None
    kernel_bytes: int
    linear_bytes: int | None
    fuel_left: int


def finish(call: NativeCall | PublicCall, max_output_bytes: int) -> Finish:
    linear = call.memory.size if call.memory is not None else None
    memory = call.kernel
    size = memory.size if memory is not None else 0
    if memory is None or not size:
        return Finish(None, b"", None, 0, linear, call.fuel_left())
    base = memory.base()  # the record, output and message read with no more C calls
    record = kernel.Record(_span(base, size, 0, kernel.RECORD.size, "kernel record"))
    output = b""
    if 0 < record.output_length <= max_output_bytes:
        output = _span(base, size, record.output, record.output_length, "output")
    error = _span(base, size, record.error, record.error_length, "error message") if record.error else None
    return Finish(record, output, error, size, linear, call.fuel_left())


def _span(base: int, size: int, ptr: int, length: int, what: str) -> bytes:
    """Bytes of the kernel's memory the kernel vouched for, checked against its size all the same."""
    if ptr + length > size:
        raise InvalidOutput(f"{what}: [{ptr:#x}, {ptr + length:#x}) is outside the kernel's memory of {size} bytes")
    return ctypes.string_at(base + ptr, length) if length else b""


class NativeCall:
    """A call on the C API (`native.NativeStore`); addresses of the runner's native objects are passed in."""

    __slots__ = ("kernel", "memory", "store")

    def __init__(self, engine: int, *, memory_bytes: int, table_elements: int, fuel: int, ticks: int,
                 scratch: Any) -> None:  # fmt: skip
        self.store = native.NativeStore(
            engine, memory_bytes=memory_bytes, table_elements=table_elements, fuel=fuel, ticks=ticks,
            memories=MEMORIES, instances=INSTANCES, tables=TABLES, scratch=scratch,
        )  # fmt: skip
        self.kernel: GuestMemory | None = None
        self.memory: GuestMemory | None = None

    def start(self, kernel_pre: int, kernel_bytes: int, data: bytes, *, log_level: int, has_config: bool,
              cap: int) -> None:  # fmt: skip
        """Instantiate the kernel (a fresh instance: `kernel_bytes` of memory, its module's least) and write the
        settings and the input, growing its memory first if they need more (`MemoryLimitExceeded` past `cap`)."""
        store = self.store
        store.instantiate(kernel_pre, native.KERNEL)
        memory = self.kernel = store.memory(native.KERNEL)
        assert isinstance(memory, native.NativeMemory)
        pages = kernel.grow_pages(kernel_bytes, len(data))
        if pages and not memory.grow(pages):
            raise kernel.input_refused(len(data), cap)
        base = memory.base() + kernel.SETTINGS_AT  # the span fits: the memory is at least grow_pages' end
        if len(data) <= _ONE_COPY:
            blob = kernel.settings(data, log_level, has_config)
            ctypes.memmove(base, blob, len(blob))
        else:
            ctypes.memmove(base, kernel.SETTINGS.pack(len(data), log_level, has_config), kernel.SETTINGS.size)
            ctypes.memmove(base + kernel.SETTINGS.size, data, len(data))

    def instantiate(self, linker: int, module: int) -> None:
        store = self.store
        store.link(linker, _MODULE, native.KERNEL, module, native.PLUGIN)
        self.memory = store.memory(native.PLUGIN)

    def run(self, name: str, returns_rc: bool) -> int:
        store = self.store
        return store.call(store.func(name), "i32" if returns_rc else None)

    def fuel_left(self) -> int:
        return self.store.fuel_left()

    def finish(self, max_output_bytes: int) -> Finish:
        return finish(self, max_output_bytes)

    def close(self) -> None:
        self.store.close()


class PublicCall:
    """The same on wasmtime-py's public API."""

    __slots__ = ("_kernel", "exports", "kernel", "memory", "store")

    def __init__(self, engine: wasmtime.Engine, *, memory_bytes: int, table_elements: int, fuel: int,
                 ticks: int) -> None:  # fmt: skip
        self.store = wasmtime.Store(engine)
        self.store.set_limits(
            memory_size=memory_bytes,
            memories=MEMORIES,
            table_elements=table_elements,
            instances=INSTANCES,
            tables=TABLES,
        )
        self.store.set_fuel(fuel)
        self.store.set_epoch_deadline(ticks)
        self.kernel: GuestMemory | None = None
        self.memory: GuestMemory | None = None
        self.exports: Any = None
        self._kernel: wasmtime.Instance | None = None

    def start(self, kernel_pre: wasmtime.InstancePre, kernel_bytes: int, data: bytes, *, log_level: int,
              has_config: bool, cap: int) -> None:  # fmt: skip
        instance = self._kernel = kernel_pre.instantiate(self.store)
        memory = instance.exports(self.store)["memory"]
        assert isinstance(memory, wasmtime.Memory)  # kernel.wat's
        self.kernel = GuestMemory(memory, self.store)
        pages = kernel.grow_pages(kernel_bytes, len(data))
        if pages:
            try:
                memory.grow(self.store, pages)
            except wasmtime.WasmtimeError:
                raise kernel.input_refused(len(data), cap) from None
        self.kernel.write(kernel.SETTINGS_AT, kernel.settings(data, log_level, has_config), "kernel input")

    def instantiate(self, linker: wasmtime.Linker, module: wasmtime.Module) -> None:
        assert self._kernel is not None
        linker.define_instance(self.store, kernel.MODULE, self._kernel)
        self.exports = linker.instantiate(self.store, module).exports(self.store)
        found = self.exports.get("memory")
        self.memory = GuestMemory(found if isinstance(found, wasmtime.Memory) else None, self.store)

    def run(self, name: str, returns_rc: bool) -> int:
        found = self.exports.get(name) if self.exports is not None else None
        if not isinstance(found, wasmtime.Func):  # check_plugin saw it; a mismatch would be a host bug
            raise wasmtime.WasmtimeError(f"plugin has no function {name!r}")
        result = found(self.store)
        return int(result) if returns_rc else 0

    def fuel_left(self) -> int:
        try:
            return self.store.get_fuel()
        except wasmtime.WasmtimeError:
            return 0

    def finish(self, max_output_bytes: int) -> Finish:
        return finish(self, max_output_bytes)

    def close(self) -> None:
        self.store.close()
