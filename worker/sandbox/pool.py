"""The pooling instance allocator: linear memories and tables come from slots reserved once per Engine.

Why: a fresh Store and instance per call otherwise maps a new memory and faults its pages in on every call
(about 4.5 µs per page touched, several per call); a pooled slot is reused, and up to `KEEP_RESIDENT` of it
stays resident, reset to its initial contents in place (memset to zero, the copy-on-write image mapped back)
when the instance goes: the next instance sees a fresh memory (tests/sandbox/test_pool.py proves it) without
faulting. The allocator does not change compiled code (wasmtime's documentation: artifacts work with and
without it; tests/sandbox/test_pool.py deserializes one across), so it is not part of the cache key.

The slots are sized so that the store's limiter (the per-call caps the runners set), never the pool, decides
what a module may have: a memory or table the pool could not hold would otherwise be refused with the pool's
own message, at load time, instead of the typed error of its call:

- memory: `MEMORY_SLOT_BYTES` is 4 GiB, the largest wasm32 memory (memory64 is off), so no memory cap
  (`Limits.memory_mb`, the component backend's replay at twice the cap) reaches past a slot. wasmtime requires
  the memory reservation to cover a slot, so engine.py reserves 4 GiB too, pooled or not.
- tables: `TABLE_ELEMENTS` and `MAX_TABLES_PER_MODULE` are the validator's own maxima (10,000,000 elements,
  100 tables), so every valid module fits; the limiter's caps (100,000 elements, a few tables) refuse first.
- counts: one store holds at most `STORE_MEMORIES` memories, `STORE_TABLES` tables and `STORE_INSTANCES` core
  instances (an Extism call: kernel + plugin; a component: its core instances); a pool process runs one call
  at a time and closes its store before the next (a component's replay, a batch's fallback to single items),
  so the totals leave room for a few stores at once. Running out is not the module's doing: `traps.classify`
  reports it as `InternalError`, at once (wasmtime refuses an allocation beyond the totals, it does not wait).
- instance metadata (`max_core_instance_size`, `max_component_instance_size`) is only a limit, allocated per
  instance; 256 MiB covers the largest a module within the validator's maxima can need (its globals, its
  functions' references), so it never refuses a module either.

The cost is address space: `reservation_bytes()` (about 74 GiB, PROT_NONE, no memory) per Engine. Where that
cannot be reserved (an `RLIMIT_AS`, as in the bounded compiler's child) or the C functions are missing, the
engine is made without the pool (`unavailable`): same code, same limits, a fresh mapping per instance.
"""

from __future__ import annotations

import ctypes
import mmap
from typing import Any

MIB = 1024 * 1024
MEMORY_SLOT_BYTES = 1 << 32
TOTAL_MEMORIES = 16
TOTAL_TABLES = 128  # at least MAX_TABLES_PER_MODULE: wasmtime checks a module against both
TABLE_ELEMENTS = 10_000_000  # wasmparser's MAX_WASM_TABLE_ENTRIES
TABLE_ELEMENT_BYTES = 8  # a funcref slot
MAX_TABLES_PER_MODULE = 100  # wasmparser's MAX_WASM_TABLES
TOTAL_CORE_INSTANCES = 1000
TOTAL_COMPONENT_INSTANCES = 1000
MAX_INSTANCE_BYTES = 256 * MIB
# What stays resident of a memory slot after its instance goes, reset in place; past it, pages are given back
# (madvise) and fault in again next time. At most TOTAL_MEMORIES of it are resident (16 MiB). Measured CPU per
# call on this project's 2-core machine: Extism greeting (bench/extism_compare.py) 53 us without the pool's
# keep-resident, 42 us at 64 KiB, 1 MiB or 4 MiB alike (its two memories are small); the Rust greeting
# (bench/sandbox_call.py, 1 MiB of stack below its heap) 47 us at 64 KiB, 41 us at 1 MiB, 40 us at 4 MiB.
KEEP_RESIDENT = 1 * MIB
TABLE_KEEP_RESIDENT = 64 * 1024

# The most one store of the sandbox may hold; each runner's limiter caps its stores at or under these.
STORE_MEMORIES = 2
STORE_TABLES = 32
STORE_INSTANCES = 65  # componentize-py's greeting_py instantiates 38 core modules; +1: the component memory meter

SETTINGS: dict[str, int] = {
    "max_memory_size": MEMORY_SLOT_BYTES,
    "total_memories": TOTAL_MEMORIES,
    "max_memories_per_module": 1,
    "total_tables": TOTAL_TABLES,
    "table_elements": TABLE_ELEMENTS,
    "max_tables_per_module": MAX_TABLES_PER_MODULE,
    "total_core_instances": TOTAL_CORE_INSTANCES,
    "total_component_instances": TOTAL_COMPONENT_INSTANCES,
    "max_core_instance_size": MAX_INSTANCE_BYTES,
    "max_component_instance_size": MAX_INSTANCE_BYTES,
    "linear_memory_keep_resident": KEEP_RESIDENT,
    "table_keep_resident": TABLE_KEEP_RESIDENT,
}

try:
    from wasmtime import _ffi
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _ffi = None  # type: ignore[assignment]


def reservation_bytes(guard_bytes: int) -> int:
    """The address space the pool reserves: every memory slot with a guard on each side, every table slot."""
    return TOTAL_MEMORIES * (MEMORY_SLOT_BYTES + 2 * guard_bytes) + TOTAL_TABLES * TABLE_ELEMENTS * TABLE_ELEMENT_BYTES


def _functions() -> dict[str, Any]:
    if _ffi is None:
        raise AttributeError("wasmtime._ffi is missing")
    names = ["wasmtime_pooling_allocation_config_new", "wasmtime_pooling_allocation_config_delete",
             "wasmtime_pooling_allocation_strategy_set"]  # fmt: skip
    names += [f"wasmtime_pooling_allocation_config_{name}_set" for name in SETTINGS]
    return {name: getattr(_ffi, name) for name in names}


def _can_reserve(size: int) -> bool:
    """Whether `size` bytes of address space can be reserved now (a PROT_NONE mapping, made and dropped)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]  # fmt: skip
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
        address = libc.mmap(None, size, mmap.PROT_NONE if hasattr(mmap, "PROT_NONE") else 0, flags, -1, 0)
    except (OSError, AttributeError):
        return False
    if address in (None, ctypes.c_void_p(-1).value):
        return False
    libc.munmap(address, size)
    return True


def unavailable(guard_bytes: int) -> str | None:
    """Why the pool cannot be used in this process (None: it can). Checked before the Engine is made: wasmtime
    aborts the process when an Engine's pool cannot be reserved."""
    try:
        _functions()
    except AttributeError as exc:
        return f"the pooling allocator's C functions are missing: {exc}"
    size = reservation_bytes(guard_bytes)
    if not _can_reserve(size + size // 8):  # headroom for what the process maps meanwhile
        return f"{size >> 30} GiB of address space cannot be reserved (RLIMIT_AS?)"
    return None


def apply(config: Any) -> None:
    """Make `config` (a `wasmtime.Config`) use the pooling allocator with `SETTINGS`."""
    functions = _functions()
    pool = functions["wasmtime_pooling_allocation_config_new"]()
    try:
        for name, value in SETTINGS.items():
            functions[f"wasmtime_pooling_allocation_config_{name}_set"](pool, value)
        functions["wasmtime_pooling_allocation_strategy_set"](config.ptr(), pool)  # copies the settings
    finally:
        functions["wasmtime_pooling_allocation_config_delete"](pool)
