"""The Extism kernel (`extism:host/env`): a small WebAssembly module of our own (kernel.wat), next to the plugin.

Extism's own hosts do the same: the kernel is wasm, instantiated in the plugin's store and linked to its
`extism:host/env` imports, so the plugin's kernel calls (about 48 per AssemblyScript greeting, a byte or eight
at a time) stay in wasm, metered by fuel and the epoch deadline like the plugin's own code. Unlike Extism's,
this kernel checks every access: a load or store outside a live block, or a handle that is not a live block's
offset, traps with a fault record the host turns into `ModuleTrap` (trap code `bad_offset` / `bad_handle`);
an allocation past the call's memory cap (the store's limiter covers the kernel's memory too) is
`MemoryLimitExceeded`; an `output_set` span outside a live block is `InvalidOutput`. `length` of an unknown
offset is 0 and `free` of one does nothing, as in Extism.

The module is compiled in-process once per Engine (it is ours, not a tenant's). The host's part of the
kernel (config, vars, logs, the denied `http_request`) is in host.py.
"""

from __future__ import annotations

import re
import struct
import weakref
from importlib.resources import files
from typing import Final

import wasmtime

from ...errors import InvalidOutput, MemoryLimitExceeded, ModuleTrap, WasmqError

MODULE: Final = "extism:host/env"
HOST_MODULE: Final = "wasmq:kernel"  # what the kernel module imports from the host (host.py)
ABORT: Final = ("env", "abort")  # AssemblyScript's; Extism does not provide it (see plugin.py)
RESERVED: Final = 1024 + 16  # the kernel's own bytes and one block header: the least a call's input leaves
RECORD: Final = struct.Struct("<QQQQIIQQ")  # kernel.wat, page 0: output, error, fault
# What the host writes into a fresh kernel instance before the plugin runs (kernel.wat reads it on its first
# call): at SETTINGS_AT the input's length, the log level, whether there is any config; the input at INPUT_AT.
SETTINGS: Final = struct.Struct("<III4x")
SETTINGS_AT: Final = 1024
INPUT_AT: Final = SETTINGS_AT + SETTINGS.size
PAGE: Final = 65536

_I32, _I64 = ("i32",), ("i64",)
# The kernel's functions, as Extism declares them: name -> (params, results). tests check kernel.wat against it.
SIGNATURES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "alloc": (_I64, _I64),
    "free": (_I64, ()),
    "length": (_I64, _I64),
    "length_unsafe": (_I64, _I64),
    "load_u8": (_I64, _I32),
    "load_u64": (_I64, _I64),
    "store_u8": (("i64", "i32"), ()),
    "store_u64": (("i64", "i64"), ()),
    "input_length": ((), _I64),
    "input_offset": ((), _I64),
    "input_load_u8": (_I64, _I32),
    "input_load_u64": (_I64, _I64),
    "output_set": (("i64", "i64"), ()),
    "error_set": (_I64, ()),
    "error_get": ((), _I64),
    "config_get": (_I64, _I64),
    "var_get": (_I64, _I64),
    "var_set": (("i64", "i64"), ()),
    "http_request": (("i64", "i64"), _I64),
    "http_status_code": ((), _I32),
    "http_headers": ((), _I64),
    "get_log_level": ((), _I32),
    **{f"log_{name}": (_I64, ()) for name in ("trace", "debug", "info", "warn", "error")},
}
# kernel.wat's fault sites (the function that refused), for the messages.
_SITES: Final = {
    1: "load_u8", 2: "load_u64", 3: "store_u8", 4: "store_u64", 5: "input_load_u8", 6: "input_load_u64",
    7: "output_set", 8: "error_set", 9: "config_get", 10: "var_get", 11: "var_set", 13: "http_request",
    14: "alloc", 16: "log_trace", 17: "log_debug", 18: "log_info", 19: "log_warn", 20: "log_error",
}  # fmt: skip
_BAD_OFFSET, _BAD_HANDLE, _OUT_OF_MEMORY, _BAD_OUTPUT = 1, 2, 3, 4

_EXPORT = re.compile(r'\(export "([a-z_0-9]+)"\)')
_HOST_EXPORTS: Final = frozenset({"memory"})
_modules: weakref.WeakKeyDictionary[wasmtime.Engine, dict[frozenset[str], wasmtime.Module]] = (
    weakref.WeakKeyDictionary()
)


def signature(name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The kernel function's (params, results) as type names, or None if the kernel has no such function."""
    return SIGNATURES.get(name)


def wat() -> str:
    return files(__package__).joinpath("kernel.wat").read_text(encoding="utf-8")


def kernel_module(engine: wasmtime.Engine, imports: frozenset[str] | None = None) -> wasmtime.Module:
    """kernel.wat compiled for `engine`, exporting only the kernel functions in `imports` (all when None) besides
    what the host uses: a call defines every export in its linker, at about 0.15 µs each. Compiled once per
    engine and set of functions (plugins built by one PDK share one)."""
    names = frozenset(SIGNATURES) if imports is None else imports & frozenset(SIGNATURES)
    compiled = _modules.setdefault(engine, {})
    found = compiled.get(names)
    if found is None:
        keep = names | _HOST_EXPORTS
        text = _EXPORT.sub(lambda m: m.group(0) if m.group(1) in keep else "", wat())
        found = compiled[names] = wasmtime.Module(engine, bytes(wasmtime.wat2wasm(text)))
    return found


def initial_bytes(module: wasmtime.Module) -> int:
    """The memory a fresh instance of a kernel module has: its memory type's least pages."""
    for export in module.exports:
        if export.name == "memory" and isinstance(export.type, wasmtime.MemoryType):
            return export.type.limits.min * PAGE
    raise RuntimeError("the kernel module exports no memory")  # pragma: no cover - kernel.wat does


def settings(data: bytes, log_level: int, has_config: bool) -> bytes:
    """The settings and the input, as the host writes them at SETTINGS_AT (one copy: for a small input)."""
    return SETTINGS.pack(len(data), log_level, has_config) + data


def grow_pages(size: int, data_length: int) -> int:
    """The pages a kernel memory of `size` bytes must grow by to hold the settings and an input of
    `data_length` bytes (the input's block rounded to 16 bytes, as kernel.wat's $setup checks)."""
    end = INPUT_AT + ((data_length + 15) & ~15)
    return 0 if end <= size else (end - size + PAGE - 1) // PAGE


def input_refused(data_length: int, cap: int) -> MemoryLimitExceeded:
    """The kernel's memory cannot grow to hold the input under the call's cap (its limiter refused)."""
    return MemoryLimitExceeded(
        f"input of {data_length} bytes: the kernel's memory cannot grow to hold it under the call's cap of {cap} bytes",
        limit="kernel_blocks",
    )


class Record:
    """What the kernel left in its page 0 at the end of a call: the output span, the error, a fault."""

    __slots__ = ("error", "error_length", "fault", "fault_a", "fault_b", "output", "output_length", "site")

    def __init__(self, raw: bytes) -> None:
        (self.output, self.output_length, self.error, self.error_length, self.fault, self.site, self.fault_a,
         self.fault_b) = RECORD.unpack(raw)  # fmt: skip

    def fault_error(self, cap: int) -> WasmqError | None:
        """The typed error of the kernel's refusal that ended the call, if it refused."""
        what, a, b = _SITES.get(self.site, "call"), self.fault_a, self.fault_b
        if self.fault == _BAD_OFFSET:
            if what.startswith("input_"):
                return ModuleTrap(
                    f"kernel {what}: input bytes [{a}, {a + b}) are past the end of the input", trap_code="bad_offset"
                )
            return ModuleTrap(
                f"kernel {what}: [{a:#x}, {a + b:#x}) is not inside a live memory block", trap_code="bad_offset"
            )
        if self.fault == _BAD_HANDLE:
            return ModuleTrap(f"kernel {what}: {a:#x} is not the offset of a live memory block", trap_code="bad_handle")
        if self.fault == _OUT_OF_MEMORY:
            return MemoryLimitExceeded(
                f"kernel alloc of {a} bytes: the kernel's memory blocks cannot grow past the call's cap of {cap} bytes",
                limit="kernel_blocks",
            )
        if self.fault == _BAD_OUTPUT:
            return InvalidOutput(f"output_set: [{a:#x}, {a + b:#x}) is not inside a live memory block")
        return None
