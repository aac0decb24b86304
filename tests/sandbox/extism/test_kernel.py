"""The kernel module itself (worker/sandbox/extism/kernel.wat): Extism's signatures, and its allocator's edges
(blocks reused after free, an index past its first page, handles that point inside a block)."""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime

from tests.sandbox.extism.conftest import LIMITS
from worker.errors import ModuleTrap
from worker.sandbox.extism import ExtismPlugin, ExtismRunner, load_plugin
from worker.sandbox.extism.kernel import SIGNATURES, kernel_module

PLUGIN = r"""
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  ;; Answer two bytes.
  (func $answer (param $a i32) (param $b i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $h) (local.get $a))
    (call $store_u8 (i64.add (local.get $h) (i64.const 1)) (local.get $b))
    (call $output_set (local.get $h) (i64.const 2)))
  (func (export "reuse") (result i32)     ;; "1" if a freed block's offset comes back, then its first byte + '0'
    (local $a i64) (local $b i64)
    (local.set $a (call $alloc (i64.const 100)))
    (call $store_u8 (local.get $a) (i32.const 7))
    (call $free (local.get $a))
    (local.set $b (call $alloc (i64.const 100)))
    (call $answer (i32.add (i32.const 48) (i64.eq (local.get $a) (local.get $b)))
                  (i32.add (i32.const 48) (call $load_u8 (local.get $b))))
    (i32.const 0))
  (func (export "many") (result i32)      ;; 1000 blocks (past the first index page), first and last still there
    (local $i i32) (local $h i64) (local $first i64)
    (loop $more
      (local.set $h (call $alloc (i64.const 24)))
      (call $store_u8 (local.get $h) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
      (if (i32.eqz (local.get $i)) (then (local.set $first (local.get $h))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $answer (call $load_u8 (local.get $first))
                  (i32.add (i32.const 40) (i32.wrap_i64 (call $length (local.get $first)))))
    (i32.const 0))
  (func (export "many_last") (result i32)
    (local $i i32) (local $h i64)
    (loop $more
      (local.set $h (call $alloc (i64.const 24)))
      (call $store_u8 (local.get $h) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $answer (call $load_u8 (local.get $h)) (i32.const 33))
    (i32.const 0))
  (func (export "inner_length") (result i32)  ;; an offset inside a block is not a handle: length 0
    (local $h i64)
    (local.set $h (call $alloc (i64.const 64)))
    (call $answer (i32.add (i32.const 48) (i32.wrap_i64 (call $length (i64.add (local.get $h) (i64.const 16)))))
                  (i32.const 33))
    (i32.const 0))
  (func (export "inner_error") (result i32)
    (local $h i64)
    (local.set $h (call $alloc (i64.const 64)))
    (call $error_set (i64.add (local.get $h) (i64.const 16)))
    (i32.const 0))
  (func (export "output_kept") (result i32)   ;; the output's block survives free: "ey" of "key"
    (local $h i64)
    (local.set $h (call $alloc (i64.const 3)))
    (call $store_u8 (local.get $h) (i32.const 107))
    (call $store_u8 (i64.add (local.get $h) (i64.const 1)) (i32.const 101))
    (call $store_u8 (i64.add (local.get $h) (i64.const 2)) (i32.const 121))
    (call $output_set (i64.add (local.get $h) (i64.const 1)) (i64.const 2))
    (call $free (local.get $h))
    (drop (call $alloc (i64.const 3)))
    (i32.const 0))
)
"""
FUNCTIONS = ["reuse", "many", "many_last", "inner_length", "inner_error", "output_kept"]


@pytest.fixture(scope="module")
def edges(engine: wasmtime.Engine) -> ExtismPlugin:
    return load_plugin(engine, wasmtime.wat2wasm(PLUGIN), ref="kernel-edges", functions=FUNCTIONS)


def call(runner: ExtismRunner, plugin: ExtismPlugin, function: str, **limits: Any) -> str:
    return runner.call(plugin, function, "", **{**LIMITS, **limits})[0]


def test_the_kernel_module_has_extisms_signatures(engine: wasmtime.Engine) -> None:
    module = kernel_module(engine)
    exports = {e.name: e.type for e in module.exports}
    assert isinstance(exports.pop("memory"), wasmtime.MemoryType)
    assert "begin" not in exports  # no set-up call: the host writes the call's settings into the kernel's memory
    found = {
        name: (tuple(str(t) for t in ty.params), tuple(str(t) for t in ty.results))
        for name, ty in exports.items()
        if isinstance(ty, wasmtime.FuncType)
    }
    assert found == SIGNATURES
    assert kernel_module(engine) is module  # compiled once per engine


def test_a_freed_block_is_reused_zeroed(runner: ExtismRunner, edges: ExtismPlugin) -> None:
    assert call(runner, edges, "reuse") == "10"


def test_blocks_past_the_first_index_page(runner: ExtismRunner, edges: ExtismPlugin) -> None:
    assert call(runner, edges, "many") == "a" + chr(40 + 24)
    assert call(runner, edges, "many_last") == chr(97 + 999 % 26) + "!"


def test_an_offset_inside_a_block_is_no_handle(runner: ExtismRunner, edges: ExtismPlugin) -> None:
    assert call(runner, edges, "inner_length") == "0!"
    with pytest.raises(ModuleTrap, match="is not the offset of a live memory block") as caught:
        call(runner, edges, "inner_error")
    assert caught.value.details["trap_code"] == "bad_handle"


def test_the_outputs_block_outlives_free(runner: ExtismRunner, edges: ExtismPlugin) -> None:
    assert call(runner, edges, "output_kept") == "ey"


def test_the_kernel_memory_is_under_the_cap(runner: ExtismRunner, edges: ExtismPlugin) -> None:
    _, usage = runner.call(edges, "many", "", **LIMITS)
    assert 0 < usage.block_bytes <= LIMITS["memory_bytes"]
