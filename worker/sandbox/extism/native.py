"""The fast way across the wasmtime C API for Extism calls: raw host functions and a raw per-call store.

The kernel itself is wasm (kernel.wat), so the plugin's block traffic never reaches Python; what still does
(config, vars, logs) goes through raw callbacks: wasmtime-py's `Linker.define_func` trampoline costs about 20 µs
a call (it wraps the caller and builds `Val`s and `ValType`s for every argument and result), one defined with
`wasmtime_linker_define_func_unchecked` gets the raw argument array instead, for about 0.5 µs. The store, the
two instances (kernel and plugin), the linking and the export look-ups of a call go straight through the C API
too (the public API spends about 90 µs there).

This uses wasmtime-py internals (`wasmtime._ffi`: the loaded library and its struct layouts), checked when this
module is imported (`AVAILABLE`); without them the runner uses the public API, which behaves the same, slower.
A host function that raises hands its exception to the runner through the runner's slot and traps; the runner
then raises that exception instead of the trap.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from ctypes import c_bool, c_char_p, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any, Final

import wasmtime

from ..capi import address
from ..memory import GuestMemory
from .state import Slot

try:
    from wasmtime import _ffi
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _ffi = None  # type: ignore[assignment]

CALLBACK = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, ctypes.POINTER(c_int64), c_size_t)
_RAW_STRIDE: Final = 2  # a wasmtime_val_raw_t is 16 bytes: two int64 slots per value
_EXTERN_FUNC, _EXTERN_MEMORY = 0, 3
# The per-store scratch block: trap pointer, fuel, two instances (16 bytes each: the kernel's, the plugin's),
# three raw values (arguments and result), then 32-byte externs.
_TRAP, _FUEL, KERNEL, PLUGIN, _VALS, _EXTERNS = 0, 8, 16, 32, 48, 96
_SCRATCH = _EXTERNS + 6 * 32
_U64 = struct.Struct("<Q")


def _load() -> dict[str, Any]:
    if _ffi is None:
        raise ImportError("wasmtime._ffi is missing")
    if not (
        ctypes.sizeof(_ffi.wasmtime_val_raw_t) == 8 * _RAW_STRIDE
        and ctypes.sizeof(_ffi.wasmtime_extern_t) == 32
        and _ffi.wasmtime_extern_t.of.offset == 8
        and ctypes.sizeof(_ffi.wasmtime_instance_t) == 16
        and _ffi.WASMTIME_EXTERN_FUNC.value == _EXTERN_FUNC
        and _ffi.WASMTIME_EXTERN_MEMORY.value == _EXTERN_MEMORY
    ):
        raise TypeError("wasmtime-py's C struct layout is not the one this fast path was written for")
    p = c_void_p

    def bind(name: str, restype: Any, *argtypes: Any) -> Any:
        assert _ffi is not None
        func = _ffi.dll[name]  # a new function object: wasmtime-py's own prototype is left untouched
        func.restype, func.argtypes = restype, list(argtypes)
        return func

    return {
        "define": bind("wasmtime_linker_define_func_unchecked", p, p, c_char_p, c_size_t, c_char_p, c_size_t, p,
                       CALLBACK, p, p),
        "caller_context": bind("wasmtime_caller_context", p, p),
        "trap_new": bind("wasmtime_trap_new", p, c_char_p, c_size_t),
        "store_new": bind("wasmtime_store_new", p, p, p, p),
        "store_context": bind("wasmtime_store_context", p, p),
        "store_delete": bind("wasmtime_store_delete", None, p),
        "limiter": bind("wasmtime_store_limiter", None, p, c_int64, c_int64, c_int64, c_int64, c_int64),
        "set_fuel": bind("wasmtime_context_set_fuel", p, p, c_uint64),
        "get_fuel": bind("wasmtime_context_get_fuel", p, p, p),
        "set_epoch_deadline": bind("wasmtime_context_set_epoch_deadline", None, p, c_uint64),
        "set_wasi": bind("wasmtime_context_set_wasi", p, p, p),
        "pre_instantiate": bind("wasmtime_instance_pre_instantiate", p, p, p, p, p),
        "define_instance": bind("wasmtime_linker_define_instance", p, p, p, c_char_p, c_size_t, p),
        "linker_instantiate": bind("wasmtime_linker_instantiate", p, p, p, p, p, p),
        "export_get": bind("wasmtime_instance_export_get", c_bool, p, p, c_char_p, c_size_t, p),
        "func_call": bind("wasmtime_func_call_unchecked", p, p, p, p, c_size_t, p),
        "memory_data": bind("wasmtime_memory_data", p, p, p),
        "memory_data_size": bind("wasmtime_memory_data_size", c_size_t, p, p),
        "memory_grow": bind("wasmtime_memory_grow", p, p, p, c_uint64, p),
    }  # fmt: skip


try:
    _C = _load()
    AVAILABLE, UNAVAILABLE_REASON = True, ""
except (ImportError, AttributeError, TypeError) as _exc:  # pragma: no cover - depends on the wasmtime-py build
    _C, AVAILABLE, UNAVAILABLE_REASON = {}, False, f"{type(_exc).__name__}: {_exc}"

# Bound once: a dict look-up less per C call (None when the fast path is unavailable: never called then).
_c_store_new: Any = _C.get("store_new")
_c_store_context: Any = _C.get("store_context")
_c_store_delete: Any = _C.get("store_delete")
_c_limiter: Any = _C.get("limiter")
_c_set_fuel: Any = _C.get("set_fuel")
_c_get_fuel: Any = _C.get("get_fuel")
_c_set_epoch_deadline: Any = _C.get("set_epoch_deadline")
_c_pre_instantiate: Any = _C.get("pre_instantiate")
_c_define_instance: Any = _C.get("define_instance")
_c_linker_instantiate: Any = _C.get("linker_instantiate")
_c_export_get: Any = _C.get("export_get")
_c_func_call: Any = _C.get("func_call")
_memory_data_size: Any = _C.get("memory_data_size")
_memory_data: Any = _C.get("memory_data")


def _raise(error: int | None, scratch: Any) -> None:
    """Raise what the public API would: `WasmtimeError` (or `ExitTrap`) for an error, `Trap` for a trap."""
    assert _ffi is not None
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
    (trap,) = _U64.unpack_from(scratch, _TRAP)
    if trap:
        _U64.pack_into(scratch, _TRAP, 0)
        raise wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(_ffi.wasm_trap_t)))


# -- host functions as raw callbacks ------------------------------------------------------------------


def callback(func: Callable[..., Any], nparams: int, has_result: bool, needs_caller: bool, slot: Slot) -> Any:
    """A C callback that calls `func` with the slot's call state and the raw integer arguments (and before them
    the caller's address, when `needs_caller`: see `charge_fuel`). An i32 argument arrives as the raw slot's
    64 bits: the functions mask it. Specialised by arity for the common ones."""
    trap_new = _C["trap_new"]
    message = b"extism host function failed"
    args: Callable[[int, Any], tuple[int, ...]]
    if nparams == 0:
        args = (lambda caller, vals: (caller,)) if needs_caller else (lambda caller, vals: ())
    elif nparams == 1:
        args = (lambda caller, vals: (caller, vals[0])) if needs_caller else (lambda caller, vals: (vals[0],))
    elif nparams == 2:
        args = (
            (lambda caller, vals: (caller, vals[0], vals[_RAW_STRIDE]))
            if needs_caller
            else (lambda caller, vals: (vals[0], vals[_RAW_STRIDE]))
        )
    elif needs_caller:
        args = lambda caller, vals: (caller, *(vals[i * _RAW_STRIDE] for i in range(nparams)))  # noqa: E731
    else:
        args = lambda caller, vals: tuple(vals[i * _RAW_STRIDE] for i in range(nparams))  # noqa: E731

    def run(env: int, caller: int, vals: Any, count: int) -> int:
        try:
            result = func(slot.state, *args(caller, vals))
            if has_result:
                vals[0] = result
            return 0
        except BaseException as exc:
            slot.hand_over(exc)
            return int(trap_new(message, len(message)) or 0)

    return CALLBACK(run)


def define(linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, cb: Any) -> None:
    """Put a raw callback (from `callback`) into `linker`; keep `cb` alive as long as the linker."""
    encoded_module, encoded_name = module.encode(), name.encode()
    error = _C["define"](address(linker), encoded_module, len(encoded_module), encoded_name, len(encoded_name),
                         address(ty), cb, None, None)  # fmt: skip
    if error:
        _raise(error, None)


def charge_fuel(caller: int, units: int) -> bool:
    """Take `units` of fuel from a kernel function's caller (its store); False (and fuel 0) when it has fewer."""
    context = _C["caller_context"](caller)
    left = c_uint64(0)
    if _C["get_fuel"](context, ctypes.addressof(left)):
        return False  # pragma: no cover - the engine meters fuel, so this does not fail
    enough = left.value >= units
    _C["set_fuel"](context, left.value - units if enough else 0)
    return enough


# -- a call's store and instances ---------------------------------------------------------------------


class Scratch(ctypes.Structure):
    """The few bytes a `NativeStore` passes to the C API, at the offsets above (`_TRAP` ... `_EXTERNS`)."""

    _fields_ = (
        ("trap", c_uint64),
        ("fuel", c_uint64),
        ("instances", ctypes.c_uint8 * 32),
        ("vals", c_int64 * 6),
        ("externs", ctypes.c_uint8 * (_SCRATCH - _EXTERNS)),
    )


def new_scratch() -> Scratch:
    """A scratch block (trap pointer, fuel, instances, values, exports) for one store at a time."""
    return Scratch()


class NativeStore:
    """A native store with limits, fuel and an epoch deadline, two instances (`KERNEL`, `PLUGIN`), and their
    exports by name. The C functions are bound to module globals (`_c_...`): a dict look-up less per C call."""

    __slots__ = ("ctx", "next_extern", "ptr", "scratch", "scratch_at", "vals")

    def __init__(
        self,
        engine: int,
        *,
        memory_bytes: int,
        table_elements: int,
        fuel: int,
        ticks: int,
        memories: int = 1,
        instances: int = -1,
        tables: int = -1,
        scratch: Scratch | None = None,
    ) -> None:
        ptr = _c_store_new(engine, None, None)
        if not ptr:
            raise MemoryError("wasmtime_store_new failed")
        self.ptr: int = ptr
        ctx: int = _c_store_context(ptr)
        self.ctx: int = ctx
        # A caller running one store at a time may lend one scratch block to all of them (`new_scratch`).
        scratch = self.scratch = scratch if scratch is not None else Scratch()
        scratch.trap = 0
        self.vals = scratch.vals
        self.scratch_at = ctypes.addressof(scratch)
        self.next_extern = _EXTERNS
        _c_limiter(ptr, memory_bytes, table_elements, instances, tables, memories)
        error = _c_set_fuel(ctx, fuel)
        if error:
            self.close()
            _raise(error, scratch)
        _c_set_epoch_deadline(ctx, ticks)

    def context(self) -> int:
        if not self.ctx:
            raise ValueError("this store is closed")  # a dangling context would crash the process
        return self.ctx

    def set_wasi(self, config: wasmtime.WasiConfig) -> None:
        error = _C["set_wasi"](self.context(), int(ctypes.cast(config._consume(), c_void_p).value or 0))
        if error:
            _raise(error, self.scratch)

    def fuel_left(self) -> int:
        if _c_get_fuel(self.context(), self.scratch_at + _FUEL):
            return 0  # pragma: no cover
        return self.scratch.fuel  # type: ignore[no-any-return]  # a c_uint64 field: an int

    def instantiate(self, pre: int, instance: int = PLUGIN) -> None:
        """Instantiate an `InstancePre` (its address) as `instance` (`KERNEL` or `PLUGIN`)."""
        at = self.scratch_at
        error = _c_pre_instantiate(pre, self.context(), at + instance, at + _TRAP)
        if error or self.scratch.trap:
            _raise(error, self.scratch)

    def link(self, linker: int, name: bytes, instance: int, module: int, into: int) -> None:
        """Define `instance`'s exports in `linker` as module `name` (replacing the last call's: the linker allows
        shadowing), then instantiate `module` (its address) through it as `into`."""
        at, ctx, scratch = self.scratch_at, self.context(), self.scratch
        error = _c_define_instance(linker, ctx, name, len(name), at + instance)
        if error:
            _raise(error, scratch)
        error = _c_linker_instantiate(linker, ctx, module, at + into, at + _TRAP)
        if error or scratch.trap:
            _raise(error, scratch)

    def export(self, name: str | bytes, kind: int, instance: int = PLUGIN) -> int:
        """The address of `instance`'s export `name` if it is of `kind`, else 0."""
        offset = self.next_extern
        if offset >= _SCRATCH:
            raise RuntimeError("too many exports looked up in one call")
        slot = self.scratch_at + offset
        encoded = name if isinstance(name, bytes) else name.encode()
        if not _c_export_get(self.context(), self.scratch_at + instance, encoded, len(encoded), slot):
            return 0
        if self.scratch.externs[offset - _EXTERNS] != kind:
            return 0
        self.next_extern = offset + 32
        return slot + 8

    def func(self, name: str | bytes, instance: int = PLUGIN) -> int:
        return self.export(name, _EXTERN_FUNC, instance)

    def call(self, func: int, result: str | None, *args: int) -> int:
        """Call a function of at most three integer parameters and one result ("i32", "i64" or None); the result
        (0 when it has none)."""
        vals = self.vals
        for index, arg in enumerate(args):
            vals[_RAW_STRIDE * index] = arg
        if not args:
            vals[0] = 0
        at = self.scratch_at
        error = _c_func_call(self.context(), func, at + _VALS, 3, at + _TRAP)
        if error or self.scratch.trap:
            _raise(error, self.scratch)
        if result is None:
            return 0
        value: int = vals[0]
        if result == "i32":
            return ((value & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000  # the raw slot's low 32 bits, signed
        return value

    def memory(self, instance: int = PLUGIN) -> GuestMemory:
        return NativeMemory(self, self.export(b"memory", _EXTERN_MEMORY, instance))

    def close(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.ctx = self.ptr, 0, 0
            _c_store_delete(ptr)


class NativeMemory(GuestMemory):
    """`GuestMemory` over the exported memory of a `NativeStore`; size and base read fresh on every access."""

    __slots__ = ("at", "native")

    def __init__(self, native: NativeStore, at: int) -> None:  # no wasmtime.Memory/Store: see size, _base
        self.native = native
        self.at = at

    @property
    def size(self) -> int:
        if not self.at:
            return 0
        ctx = self.native.ctx
        if not ctx:
            raise ValueError("this store is closed")  # a dangling context would crash the process
        return _memory_data_size(ctx, self.at)  # type: ignore[no-any-return]  # a c_size_t result: an int

    def _base(self) -> int:
        return int(_memory_data(self.native.context(), self.at))

    def grow(self, pages: int) -> bool:
        """Grow by `pages` (64 KiB each); False when the store's limiter (the call's memory cap) refuses."""
        native = self.native
        error = _C["memory_grow"](native.context(), self.at, pages, native.scratch_at + _FUEL)
        if error:
            try:
                _raise(error, native.scratch)
            except wasmtime.WasmtimeError:
                return False
        return True
