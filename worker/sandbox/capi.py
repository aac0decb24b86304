"""The per-call hot path straight through wasmtime's C API: store, instance, export look-up, calls, memory.

wasmtime-py's public API does a lot of Python work per call that a sandbox calling known functions does not
need: `Func.__call__` asks the store for the function's type and builds `Val` lists on every call, and
`Instance.exports()` wraps every export of the module. Here, the registry has already checked every export's
signature, so a call packs its integer arguments into a preallocated `wasmtime_val_t` array with one
`struct.pack_into` and calls `wasmtime_func_call` (the *checked* call: wasmtime still verifies arity and types
and reports a mismatch as an error, never undefined behaviour); exports are looked up by name, only those a
call uses, with `wasmtime_instance_export_get`.

This uses wasmtime-py internals (`wasmtime._ffi`: the loaded library and the struct layouts). They are checked
when this module is imported (`AVAILABLE`); if anything differs, the sandbox falls back to the public API
(`worker/sandbox/guest.py`), which behaves the same, only slower. Errors and traps are turned into the very
exception objects the public API raises (`WasmtimeError`, `ExitTrap`, `Trap`), so classification is shared.

Lifetimes: a `RawStore` owns its native store and deletes it in `close()`; every `RawGuest` and memory view
made from it must not be used after that (the runtime makes and drops them all inside one call).
"""

from __future__ import annotations

import ctypes
import struct
from ctypes import c_bool, c_char_p, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any

import wasmtime

from .memory import GuestMemory

try:
    from wasmtime import _bindings, _ffi, _func
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _ffi = _bindings = _func = None  # type: ignore[assignment]

# Offsets inside one call's scratch block (a ctypes byte array; the C side writes into it).
_TRAP = 0  # wasm_trap_t* written by a failing call
_FUEL = 8  # u64 written by wasmtime_context_get_fuel
_INSTANCE = 16  # wasmtime_instance_t (16 bytes)
_PARAMS = 32  # up to _MAX_PARAMS wasmtime_val_t
_MAX_PARAMS = 4
_VAL = 32  # sizeof(wasmtime_val_t) as checked below
_RESULTS = _PARAMS + _MAX_PARAMS * _VAL  # one wasmtime_val_t
_EXTERNS = _RESULTS + _VAL  # one wasmtime_extern_t (32 bytes) per looked-up export
_MAX_EXTERNS = 8
_SCRATCH = _EXTERNS + _MAX_EXTERNS * 32

_KIND = {"i32": 0, "i64": 1}  # WASMTIME_I32, WASMTIME_I64
_EXTERN_FUNC, _EXTERN_MEMORY = 0, 3
_U64 = struct.Struct("<Q")
_RESULT = {"i32": struct.Struct("<B7xi"), "i64": struct.Struct("<B7xq")}
_MASK = {"i32": 0xFFFF_FFFF, "i64": 0xFFFF_FFFF_FFFF_FFFF}
_EXTERN_KIND = struct.Struct("<B")


def _param_struct(params: tuple[str, ...]) -> struct.Struct:
    """One `wasmtime_val_t` per parameter: kind byte, padding, the value at offset 8, padding to 32 bytes."""
    return struct.Struct("<" + "".join("B7xI20x" if p == "i32" else "B7xQ16x" for p in params))


_PLANS: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}


def _plan(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> Any:
    """How to call a function of this signature: packer, (kind, mask) per parameter, result count, unpacker,
    result kind. Made once per signature."""
    plan = _PLANS.get(sig)
    if plan is None:
        params, results = sig
        if len(params) > _MAX_PARAMS or len(results) > 1 or any(t not in _KIND for t in (*params, *results)):
            raise TypeError(f"a function of signature {sig} cannot be called through the fast path")
        result = results[0] if results else ""
        kinds = tuple((_KIND[p], _MASK[p]) for p in params)
        plan = _PLANS[sig] = (_param_struct(params), kinds, len(results), _RESULT.get(result), _KIND.get(result, -1))
    return plan


def _bind(name: str, restype: Any, *argtypes: Any) -> Any:
    """Our own prototype of a C function (pointers as plain integers), checked against wasmtime-py's."""
    assert _ffi is not None
    theirs = getattr(_bindings, f"_{name}")
    if len(theirs.argtypes) != len(argtypes):
        raise TypeError(f"{name} takes {len(theirs.argtypes)} arguments in this wasmtime-py")
    func = _ffi.dll[name]  # a new function object: wasmtime-py's own prototype is left untouched
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


def _load() -> dict[str, Any]:
    if _ffi is None or _bindings is None:
        raise ImportError("wasmtime._ffi is missing")
    layout = (
        ctypes.sizeof(_ffi.wasmtime_val_t) == _VAL
        and _ffi.wasmtime_val_t.of.offset == 8
        and ctypes.sizeof(_ffi.wasmtime_extern_t) == 32
        and _ffi.wasmtime_extern_t.of.offset == 8
        and ctypes.sizeof(_ffi.wasmtime_instance_t) == 16
        and ctypes.sizeof(_ffi.wasmtime_func_t) <= 24
        and ctypes.sizeof(_ffi.wasmtime_memory_t) <= 24
        and _ffi.WASMTIME_I32.value == _KIND["i32"]
        and _ffi.WASMTIME_I64.value == _KIND["i64"]
        and _ffi.WASMTIME_EXTERN_FUNC.value == _EXTERN_FUNC
        and _ffi.WASMTIME_EXTERN_MEMORY.value == _EXTERN_MEMORY
    )
    if not layout:
        raise TypeError("wasmtime-py's C struct layout is not the one this fast path was written for")
    p = c_void_p
    return {
        "store_new": _bind("wasmtime_store_new", p, p, p, p),
        "store_context": _bind("wasmtime_store_context", p, p),
        "store_delete": _bind("wasmtime_store_delete", None, p),
        "store_limiter": _bind("wasmtime_store_limiter", None, p, c_int64, c_int64, c_int64, c_int64, c_int64),
        "set_fuel": _bind("wasmtime_context_set_fuel", p, p, c_uint64),
        "get_fuel": _bind("wasmtime_context_get_fuel", p, p, p),
        "set_epoch_deadline": _bind("wasmtime_context_set_epoch_deadline", None, p, c_uint64),
        "set_wasi": _bind("wasmtime_context_set_wasi", p, p, p),
        "pre_instantiate": _bind("wasmtime_instance_pre_instantiate", p, p, p, p, p),
        "export_get": _bind("wasmtime_instance_export_get", c_bool, p, p, c_char_p, c_size_t, p),
        "func_call": _bind("wasmtime_func_call", p, p, p, p, c_size_t, p, c_size_t, p),
        "memory_data": _bind("wasmtime_memory_data", p, p, p),
        "memory_data_size": _bind("wasmtime_memory_data_size", c_size_t, p, p),
    }


try:
    _C = _load()
    AVAILABLE = True
    UNAVAILABLE_REASON = ""
except (ImportError, AttributeError, TypeError) as _exc:  # pragma: no cover - depends on the wasmtime-py build
    _C = {}
    AVAILABLE = False
    UNAVAILABLE_REASON = f"{type(_exc).__name__}: {_exc}"

if AVAILABLE:
    _store_new = _C["store_new"]
    _store_context = _C["store_context"]
    _store_delete = _C["store_delete"]
    _store_limiter = _C["store_limiter"]
    _set_fuel = _C["set_fuel"]
    _get_fuel = _C["get_fuel"]
    _set_epoch_deadline = _C["set_epoch_deadline"]
    _set_wasi = _C["set_wasi"]
    _pre_instantiate = _C["pre_instantiate"]
    _export_get = _C["export_get"]
    _func_call = _C["func_call"]
    _memory_data = _C["memory_data"]
    _memory_data_size = _C["memory_data_size"]


def address(obj: Any) -> int:
    """The native address behind a wasmtime-py object's pointer (`Engine`, `InstancePre`, ...)."""
    value = ctypes.cast(obj.ptr(), c_void_p).value
    if not value:
        raise ValueError(f"{type(obj).__name__} has no native object")
    return int(value)


def _raise(error: int | None, scratch: Any) -> None:
    """Raise what the public API would: `WasmtimeError` (or `ExitTrap`) for an error, `Trap` for a trap, and,
    as wasmtime-py's `enter_wasm` does, the exception a Python host function raised (worker/sandbox/wasi_host.py)
    instead of the "python exception" trap that carried it out of the guest."""
    assert _ffi is not None
    if error:
        exc: Exception = wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
    else:
        (trap,) = _U64.unpack_from(scratch, _TRAP)
        if not trap:
            return
        _U64.pack_into(scratch, _TRAP, 0)
        exc = wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(_ffi.wasm_trap_t)))
    _raise_host_exception()
    raise exc


def _raise_host_exception() -> None:
    """Raise (and clear) what a host function left in wasmtime-py's `LAST_EXCEPTION`, if anything: left there,
    it would come out of the next unrelated call that fails."""
    if _func is not None:
        _func.maybe_raise_last_exn()


# export address, parameter packer, (kind, mask) per parameter, result count, result unpacker, result kind
_Func = tuple[int, struct.Struct, tuple[tuple[int, int], ...], int, struct.Struct | None, int]


class RawStore:
    """A native store with limits, fuel and an epoch deadline; `close()` deletes it (idempotent)."""

    __slots__ = ("ctx", "ptr", "scratch", "scratch_at")

    def __init__(
        self,
        engine_address: int,
        *,
        memory_bytes: int,
        table_elements: int,
        fuel: int,
        ticks: int,
        tables: int = -1,
        instances: int = -1,
    ) -> None:
        ptr = _store_new(engine_address, None, None)
        if not ptr:
            raise MemoryError("wasmtime_store_new failed")
        self.ptr: int = ptr
        self.ctx: int = _store_context(ptr)
        self.scratch = (ctypes.c_uint8 * _SCRATCH)()
        self.scratch_at = ctypes.addressof(self.scratch)
        _store_limiter(ptr, memory_bytes, table_elements, instances, tables, 1)  # memories: 1
        error = _set_fuel(self.ctx, fuel)
        if error:
            self.close()
            _raise(error, self.scratch)
        _set_epoch_deadline(self.ctx, ticks)

    def context(self) -> int:
        """The native context; ValueError once closed (a dangling context would crash the process)."""
        ctx = self.ctx
        if not ctx:
            raise ValueError("this store is closed")
        return ctx

    def set_wasi(self, config: wasmtime.WasiConfig) -> None:
        error = _set_wasi(self.context(), address_of_consumed(config))
        if error:
            _raise(error, self.scratch)

    def fuel_left(self) -> int:
        error = _get_fuel(self.context(), self.scratch_at + _FUEL)
        if error:
            assert _ffi is not None
            wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))  # frees it
            return 0
        return int(_U64.unpack_from(self.scratch, _FUEL)[0])

    def instantiate(self, pre_address: int, signatures: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> RawGuest:
        error = _pre_instantiate(pre_address, self.context(), self.scratch_at + _INSTANCE, self.scratch_at + _TRAP)
        if error or _U64.unpack_from(self.scratch, _TRAP)[0]:
            _raise(error, self.scratch)
        return RawGuest(self, signatures)

    def close(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.ctx = self.ptr, 0, 0
            _store_delete(ptr)


def address_of_consumed(config: wasmtime.WasiConfig) -> int:
    """Take ownership of a `WasiConfig`'s native object (as `Store.set_wasi` does)."""
    return int(ctypes.cast(config._consume(), c_void_p).value or 0)


class RawMemory(GuestMemory):
    """`GuestMemory` over an exported memory of a `RawStore`; size and base read fresh on every access."""

    __slots__ = ("at", "raw")

    def __init__(self, raw: RawStore | None, at: int) -> None:  # no wasmtime.Memory/Store: see size, _base
        self.raw = raw
        self.at = at

    @property
    def size(self) -> int:
        raw = self.raw
        if raw is None:
            return 0
        return int(_memory_data_size(raw.context(), self.at))

    def _base(self) -> int:
        assert self.raw is not None  # only reached after a successful bounds check
        return int(_memory_data(self.raw.context(), self.at))


class RawGuest:
    """One instance in a `RawStore`: calls exports by name with integer arguments."""

    __slots__ = ("_funcs", "_next_extern", "_sigs", "mem", "raw")

    def __init__(self, raw: RawStore, signatures: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
        self.raw = raw
        self._sigs = signatures
        self._funcs: dict[str, _Func] = {}
        self._next_extern = _EXTERNS
        at = self._export("memory", _EXTERN_MEMORY)
        self.mem: GuestMemory = RawMemory(raw if at else None, at)

    def _export(self, name: str, kind: int) -> int:
        """Address of the export's extern value (0 when there is no such export of that kind)."""
        raw = self.raw
        if self._next_extern >= _SCRATCH:
            raise RuntimeError("too many exports looked up in one call")
        slot = raw.scratch_at + self._next_extern
        encoded = name.encode()
        if not _export_get(raw.context(), raw.scratch_at + _INSTANCE, encoded, len(encoded), slot):
            return 0
        if _EXTERN_KIND.unpack_from(raw.scratch, self._next_extern)[0] != kind:
            return 0
        self._next_extern += 32
        return slot + 8

    def _func(self, name: str) -> _Func:
        sig = self._sigs.get(name)
        if sig is None:
            raise KeyError(f"{name!r} is not a checked export of this module")
        plan = _plan(sig)
        at = self._export(name, _EXTERN_FUNC)
        if not at:
            raise KeyError(f"module does not export a function {name!r}")
        found = (at, *plan)
        self._funcs[name] = found
        return found

    def call(self, name: str, *args: int) -> Any:
        """Call export `name`; returns its one result (signed, as the public API does) or None."""
        found = self._funcs.get(name) or self._func(name)
        at, packer, kinds, nresults, unpacker, result_kind = found
        if len(args) != len(kinds):
            raise wasmtime.WasmtimeError(f"{name} takes {len(kinds)} arguments, not {len(args)}")
        raw = self.raw
        scratch = raw.scratch
        base = raw.scratch_at
        values: list[int] = []
        for (kind, mask), arg in zip(kinds, args, strict=True):
            values += (kind, arg & mask)
        packer.pack_into(scratch, _PARAMS, *values)
        error = _func_call(raw.context(), at, base + _PARAMS, len(args), base + _RESULTS, nresults, base + _TRAP)
        if error or _U64.unpack_from(scratch, _TRAP)[0]:
            _raise(error, scratch)
        if unpacker is None:
            return None
        kind, value = unpacker.unpack_from(scratch, _RESULTS)
        if kind != result_kind:
            raise wasmtime.WasmtimeError(f"{name} returned a value of kind {kind}, not {result_kind}")
        return value
