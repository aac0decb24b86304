"""The C-API hot path (worker/sandbox/capi.py) next to the public API, and the frees a discarded instance skips."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from tests.support.sandbox import greeting, instance, wat_spec
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.errors import ModuleTrap
from worker.sandbox import Sandbox, capi
from worker.sandbox.core.abi import call_packed, call_seed_c, call_seed_rust
from worker.sandbox.engine import MEMORY_GUARD, MEMORY_RESERVATION, engine_fingerprint
from worker.spec import ModuleSpec

# A packed module whose `dealloc` traps: calling it at all is visible.
TRAPPING_DEALLOC = """
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $ptr))
  (func (export "dealloc") (param i32 i32) unreachable)
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))
"""


@pytest.fixture(scope="module")
def trapping_dealloc(tmp_path_factory: pytest.TempPathFactory) -> ModuleSpec:
    return wat_spec(tmp_path_factory.mktemp("wat"), "trapping-dealloc", TRAPPING_DEALLOC, {"echo": "packed"})


def test_the_fast_path_is_available_on_the_pinned_wasmtime() -> None:
    # If this fails, wasmtime-py's internals changed: calls still work (public API), only slower.
    assert capi.AVAILABLE, capi.UNAVAILABLE_REASON


def test_a_single_call_does_not_free_into_the_instance_it_drops(sandbox: Sandbox, trapping_dealloc: ModuleSpec) -> None:
    assert sandbox.call(trapping_dealloc, "echo", "hello").output == "hello"


def test_adapters_still_free_for_an_instance_that_lives_on(sandbox: Sandbox, trapping_dealloc: ModuleSpec) -> None:
    with instance(sandbox, trapping_dealloc) as guest, pytest.raises(wasmtime.Trap):
        call_packed(guest, "echo", b"hello", 1024, True)


@pytest.mark.parametrize(
    ("module", "adapter", "function"),
    [
        ("greeting", call_packed, "greet"),
        ("greeting", call_seed_rust, "wasm_memory_rust_format_hello_world"),
        ("greeting", call_seed_c, "wasm_memory_c_format_hello_world"),
        ("greeting-c", call_packed, "greet"),
    ],
)
def test_freeing_adapters_answer_and_leave_the_instance_usable(
    sandbox: Sandbox, module: str, adapter: object, function: str
) -> None:
    with instance(sandbox, module) as guest:
        for name in ("Ann", "Bob", "Cy"):
            assert adapter(guest, function, name.encode(), 1024, True) == greeting(name).encode()  # type: ignore[operator]


def test_raw_guest_refuses_unchecked_exports_and_wrong_arity(sandbox: Sandbox) -> None:
    with instance(sandbox, "greeting") as guest:
        with pytest.raises(KeyError):
            guest.call("no_such_export", 1)
        with pytest.raises(wasmtime.WasmtimeError):  # the C-API path says so; wasmtime-py says "too many"
            guest.call("alloc", 1, 2)
        assert isinstance(guest.call("alloc", 8), int)


def test_a_trap_through_the_fast_path_is_a_typed_error(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrap) as info:
        sandbox.call("trap", "greet", "x")
    assert info.value.details.get("trap_code") == "unreachable"


def test_both_paths_report_the_same_usage(unit_cache_dir: Path) -> None:
    catalog = ModuleCatalog.from_manifests([Path(__file__).resolve().parents[2] / "modules" / "manifest.json"])
    usage = []
    for fast in (True, False):
        with Sandbox(catalog, settings=Settings(cache_dir=unit_cache_dir), fast=fast) as sandbox:
            result = sandbox.call("greeting", "greet", "Alice")
            usage.append((result.output, result.usage.fuel, result.usage.memory_bytes))
    assert usage[0] == usage[1]


def test_engine_memory_settings_are_part_of_the_cache_key() -> None:
    key = engine_fingerprint()
    assert f"res={MEMORY_RESERVATION}" in key and f"guard={MEMORY_GUARD}" in key


def test_a_closed_store_refuses_use_instead_of_crashing(sandbox: Sandbox) -> None:
    if not sandbox.fast:
        return  # wasmtime-py's own objects raise ValueError too ("already closed")
    compiled = sandbox.core.compiled(sandbox.catalog.resolve("greeting"))
    store = capi.RawStore(capi.address(sandbox.engine), memory_bytes=2**26, table_elements=10, fuel=10**6, ticks=100)
    guest = store.instantiate(compiled.pre_address, compiled.signatures)
    store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        guest.call("alloc", 8)
    with pytest.raises(ValueError, match="closed"):
        _ = guest.mem.size
