"""The pooling allocator (worker/sandbox/pool.py): a reused slot looks fresh, the pool fits every runner's
caps, artifacts cross between pooled and plain engines, a full pool fails at once, and a process without the
address space for it gets a plain engine."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from worker.errors import InternalError
from worker.sandbox import Sandbox, pool
from worker.sandbox.component import runner as component_runner
from worker.sandbox.core import runner as core_runner
from worker.sandbox.engine import make_engine, pooled
from worker.sandbox.extism import calls as extism_calls
from worker.sandbox.extism import runner as extism_runner

ROOT = Path(__file__).resolve().parents[2]
PAGES = 40  # 2.5 MiB: past KEEP_RESIDENT, so both the memset part and the given-back part of a slot are used
SECRET = 0xAB
# Offsets written by `dirty`: the data segment's first byte, inside KEEP_RESIDENT, past it, and in pages the
# call grew (past the initial size).
OFFSETS = (0, 100, 512 * 1024, 2 * 1024 * 1024, PAGES * 65536 + 100)
DIRTY_WAT = f"""
(module
  (memory (export "memory") {PAGES})
  (data (i32.const 0) "seed")
  (func (export "dirty")
    (drop (memory.grow (i32.const 4)))
    {" ".join(f"(i32.store8 (i32.const {o}) (i32.const {SECRET}))" for o in OFFSETS)}))
"""


def _store(engine: wasmtime.Engine) -> wasmtime.Store:
    store = wasmtime.Store(engine)
    store.set_fuel(10_000_000)
    store.set_epoch_deadline(1 << 40)
    return store


def _memory(store: wasmtime.Store, instance: wasmtime.Instance) -> wasmtime.Memory:
    memory = instance.exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    return memory


def _address(store: wasmtime.Store, memory: wasmtime.Memory) -> int | None:
    return ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value


def _fresh(store: wasmtime.Store, memory: wasmtime.Memory, *, seed: bytes) -> None:
    """Memory as a new instance has it: its initial size, the data segment, zeros everywhere else."""
    assert memory.size(store) == PAGES
    data = memory.read(store, 0, PAGES * 65536)
    assert data[: len(seed)] == seed
    assert data.count(0) == len(data) - len(seed)


def test_the_sandbox_engine_is_pooled() -> None:
    """Not a skip: the sandbox's speed relies on it, and this machine can reserve it."""
    assert pool.unavailable(64 * 1024) is None
    assert pooled(make_engine())
    assert not pooled(make_engine(pooling=False))


def test_a_reused_slot_holds_nothing_of_the_last_instance() -> None:
    engine = make_engine()
    module = wasmtime.Module(engine, DIRTY_WAT)
    store = _store(engine)
    instance = wasmtime.Instance(store, module, [])
    memory = _memory(store, instance)
    address = _address(store, memory)
    func = instance.exports(store)["dirty"]
    assert isinstance(func, wasmtime.Func)
    func(store)
    assert [memory.read(store, o, o + 1)[0] for o in OFFSETS] == [SECRET] * len(OFFSETS)
    store.close()

    store = _store(engine)
    memory = _memory(store, wasmtime.Instance(store, module, []))
    assert _address(store, memory) == address  # the same slot (the pool prefers the module's own): reset in place
    _fresh(store, memory, seed=b"seed")
    store.close()


def test_another_module_in_a_used_slot_sees_zeros_and_a_full_pool_fails_at_once() -> None:
    """Every slot of the pool taken by a second module: one of them is the slot the first module dirtied."""
    engine = make_engine()
    first = wasmtime.Module(engine, DIRTY_WAT)
    store = _store(engine)
    instance = wasmtime.Instance(store, first, [])
    dirty = instance.exports(store)["dirty"]
    assert isinstance(dirty, wasmtime.Func)
    dirty(store)
    store.close()

    other = wasmtime.Module(engine, f'(module (memory (export "memory") {PAGES}))')
    stores = [_store(engine) for _ in range(pool.TOTAL_MEMORIES)]
    try:
        for each in stores:
            _fresh(each, _memory(each, wasmtime.Instance(each, other, [])), seed=b"")
        extra = _store(engine)
        with pytest.raises(wasmtime.WasmtimeError, match="maximum concurrent"):
            wasmtime.Instance(extra, other, [])
        extra.close()
    finally:
        for each in stores:
            each.close()
    store = _store(engine)
    _fresh(store, _memory(store, wasmtime.Instance(store, other, [])), seed=b"")
    store.close()


def test_a_call_on_a_full_pool_is_an_internal_error_not_the_modules(tmp_path: Path) -> None:
    from worker.catalog import ModuleCatalog
    from worker.config import Settings

    catalog = ModuleCatalog.from_manifests([ROOT / "modules" / "manifest.json"])
    with Sandbox(catalog, settings=Settings(cache_dir=tmp_path)) as sandbox:
        assert sandbox.call("greeting", "greet", "Alice").output == "Hello World, Alice!"
        held = wasmtime.Module(sandbox.engine, "(module (memory 1))")
        stores = [_store(sandbox.engine) for _ in range(pool.TOTAL_MEMORIES)]
        try:
            for each in stores:
                wasmtime.Instance(each, held, [])
            with pytest.raises(InternalError, match="pool is exhausted"):
                sandbox.call("greeting", "greet", "Alice")
            with pytest.raises(InternalError, match="pool is exhausted"):
                sandbox.call("greeting-extism", "greet", "Alice")
        finally:
            for each in stores:
                each.close()
        assert sandbox.call("greeting", "greet", "Alice").output == "Hello World, Alice!"


def test_artifacts_cross_between_pooled_and_plain_engines() -> None:
    """The pool changes no compiled code, so it is not in the cache key (engine_fingerprint)."""
    plain, pooled_engine = make_engine(pooling=False), make_engine()
    wat = '(module (memory (export "memory") 1) (func (export "f") (result i32) (i32.load (i32.const 8))))'
    for source, target in ((plain, pooled_engine), (pooled_engine, plain)):
        module = wasmtime.Module.deserialize(target, wasmtime.Module(source, wat).serialize())
        store = _store(target)
        func = wasmtime.Instance(store, module, []).exports(store)["f"]
        assert isinstance(func, wasmtime.Func) and func(store) == 0
        store.close()


def test_every_runners_store_fits_the_pool() -> None:
    """The limiter of each ABI's stores, not the pool, decides what a call may have."""
    stores = {
        "core": (1, core_runner.MAX_INSTANCES, core_runner.MAX_TABLES, core_runner.MAX_TABLE_ELEMENTS),
        "component": (1, component_runner.MAX_INSTANCES, component_runner.MAX_TABLES,
                      component_runner.MAX_TABLE_ELEMENTS),
        "extism": (extism_calls.MEMORIES, extism_calls.INSTANCES, extism_calls.TABLES,
                   extism_runner.MAX_TABLE_ELEMENTS),
    }  # fmt: skip
    for abi, (memories, instances, tables, elements) in stores.items():
        assert memories <= pool.STORE_MEMORIES, abi
        assert instances <= pool.STORE_INSTANCES, abi
        assert tables <= pool.STORE_TABLES, abi
        assert elements <= pool.TABLE_ELEMENTS, abi
    assert component_runner.MAX_MEMORY_BYTES <= pool.MEMORY_SLOT_BYTES  # the replay's doubled cap too
    # Room for a few stores at once, and for any module the validator accepts (checked at load against both).
    assert pool.TOTAL_MEMORIES >= 4 * pool.STORE_MEMORIES
    assert pool.TOTAL_TABLES >= max(4 * pool.STORE_TABLES, pool.MAX_TABLES_PER_MODULE)
    assert pool.TOTAL_CORE_INSTANCES >= 4 * pool.STORE_INSTANCES


def test_a_process_without_the_address_space_gets_a_plain_engine() -> None:
    """Under an RLIMIT_AS too small for the pool (as in the bounded compiler's child), no abort: a plain engine
    that still runs modules."""
    script = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))\n"
        "import wasmtime\n"
        "from worker.sandbox import pool\n"
        "from worker.sandbox.engine import make_engine, pooled\n"
        "assert pool.unavailable(64 * 1024) is not None\n"
        "engine = make_engine()\n"
        "assert not pooled(engine)\n"
        "store = wasmtime.Store(engine); store.set_fuel(1000); store.set_epoch_deadline(1 << 40)\n"
        "wasmtime.Instance(store, wasmtime.Module(engine, '(module (memory 1))'), [])\n"
        "print('plain')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "plain"
