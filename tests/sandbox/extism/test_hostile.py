"""Hostile Extism plugins (tests/corpora/extism): every misuse of the kernel is a typed error, never a crash,
and the very next good call in the same process still answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import wasmtime

from tests.sandbox.extism.conftest import LIMITS, corpus_plugin
from worker.errors import (
    DeadlineExceeded,
    FuelExhausted,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
)
from worker.sandbox.extism import ExtismPlugin, ExtismRunner

FAILURES: list[tuple[str, type[WasmqError], str | None, dict[str, Any]]] = [
    ("load_unknown", ModuleTrap, "bad_offset", {}),
    ("store_unknown", ModuleTrap, "bad_offset", {}),
    ("load_past_end", ModuleTrap, "bad_offset", {}),
    ("use_after_free", ModuleTrap, "bad_offset", {}),
    ("input_past_end", ModuleTrap, "bad_offset", {}),
    ("error_bogus", ModuleTrap, "bad_handle", {}),
    ("config_bogus", ModuleTrap, "bad_handle", {}),
    ("http", ModuleTrap, "http_denied", {}),
    ("http_nested", ModuleTrap, "http_denied", {}),
    ("rc_seven", ModuleTrap, "plugin_error", {}),
    ("error_and_rc_zero", ModuleTrap, "plugin_error", {}),
    ("output_bogus", InvalidOutput, None, {}),
    ("output_past_end", InvalidOutput, None, {}),
    ("output_huge_length", InvalidOutput, None, {}),
    ("invalid_utf8", InvalidOutput, None, {}),
    ("oversize_output", InvalidOutput, None, {}),
    ("var_huge", MemoryLimitExceeded, None, {}),
    ("alloc_huge", MemoryLimitExceeded, None, {}),
    ("alloc_forever", MemoryLimitExceeded, None, {}),
    ("grow_memory", MemoryLimitExceeded, None, {}),
    ("spin", FuelExhausted, None, {"fuel": 100_000}),
    ("spin", DeadlineExceeded, None, {"fuel": 10**15, "timeout_ms": 50}),
    # Host work is charged to fuel: 32 MiB zeroed per iteration is 4M units, so this stops at the first one.
    ("alloc_free_forever", FuelExhausted, None, {"fuel": 1_000_000, "memory_bytes": 64 * 1024 * 1024}),
    ("alloc_free_forever", DeadlineExceeded, None, {"fuel": 10**15, "timeout_ms": 100, "memory_bytes": 64 << 20}),
]


def call(runner: ExtismRunner, plugin: ExtismPlugin, function: str, data: str = "Zoë", **limits: Any) -> str:
    return runner.call(plugin, function, data, **{**LIMITS, **limits})[0]


@pytest.mark.parametrize("case", FAILURES, ids=[f"{c[0]}-{c[1].__name__}" for c in FAILURES])
def test_misuse_is_a_typed_error_and_the_next_call_works(
    runner: ExtismRunner, abuse: ExtismPlugin, greeting: ExtismPlugin, case: tuple[Any, ...]
) -> None:
    function, error, trap_code, limits = case
    with pytest.raises(error) as caught:
        call(runner, abuse, function, **limits)
    assert type(caught.value) is error
    if trap_code is not None:
        assert caught.value.details["trap_code"] == trap_code
    assert "usage" in caught.value.details
    json.dumps(caught.value.to_dict())
    assert call(runner, greeting, "greet") == "Hello World, Zoë!"


def test_messages_say_what_happened(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    with pytest.raises(ModuleTrap, match=r"request to http://example\.invalid/steal"):
        call(runner, abuse, "http")
    with pytest.raises(ModuleTrap, match="non-zero code 7") as caught:
        call(runner, abuse, "rc_seven")
    assert caught.value.details["rc"] == 7
    with pytest.raises(ModuleTrap, match="plugin error: key"):
        call(runner, abuse, "error_and_rc_zero")
    with pytest.raises(MemoryLimitExceeded, match="vars would take") as limit:
        call(runner, abuse, "var_huge")
    assert limit.value.details["limit"] == "vars"


def test_what_the_kernel_defines_is_answered(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    assert call(runner, abuse, "length_unknown") == "\0" * 8  # length of an unknown offset: 0
    assert call(runner, abuse, "free_unknown") == "key"  # free of an unknown offset: ignored
    assert call(runner, abuse, "no_rc") == "key"  # a () -> () export


def test_vars_live_for_one_call_only(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    assert call(runner, abuse, "var_roundtrip", "José") == "José"
    assert call(runner, abuse, "var_read") == ""


def test_logs_are_bounded(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    output, usage = runner.call(abuse, "log_flood", "", **LIMITS)
    assert output == "key"
    assert len(usage.logs) == 257 and usage.logs[0] == {"level": "info", "message": "key"}
    assert usage.logs[-1]["message"] == "[1744 more log lines dropped]"


def test_host_blocks_are_bounded_by_the_memory_cap(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    with pytest.raises(MemoryLimitExceeded) as caught:
        call(runner, abuse, "alloc_forever", memory_bytes=4 * 1024 * 1024)
    assert caught.value.details["usage"]["block_bytes"] <= 4 * 1024 * 1024


def test_env_abort_ends_the_call_with_its_message(runner: ExtismRunner, engine: wasmtime.Engine) -> None:
    plugin = corpus_plugin(engine, "env_abort", ["run", "bogus"])
    with pytest.raises(ModuleTrap, match=r"plugin aborted: boom! at plug\.ts:3:7") as caught:
        call(runner, plugin, "run")
    assert caught.value.details["trap_code"] == "abort"
    with pytest.raises(ModuleTrap, match=r"plugin aborted: \? at \?:1:1"):
        call(runner, plugin, "bogus")


def test_wasi_is_linked_with_nothing_granted(runner: ExtismRunner, engine: wasmtime.Engine) -> None:
    plugin = corpus_plugin(engine, "wasi_plugin", ["run"])
    assert plugin.needs_wasi
    assert call(runner, plugin, "run") == "ok"


def test_the_deadline_covers_instantiation(runner: ExtismRunner, engine: wasmtime.Engine) -> None:
    plugin = corpus_plugin(engine, "start_loops", ["run"])
    with pytest.raises(DeadlineExceeded):
        call(runner, plugin, "run", fuel=10**15, timeout_ms=50)


@pytest.mark.parametrize(
    ("name", "functions", "message"),
    [
        ("rejected", ["run"], "the Extism kernel has no such function"),
        ("wrong_signature", ["greet"], r"alloc is \(i32\) -> \(i32\), the host provides \(i64\) -> \(i64\)"),
        ("foreign_import", ["run"], "may import only"),
        ("no_memory", ["run"], "exports no memory"),
        ("env_abort", ["missing"], "exports no function 'missing'"),
    ],
)
def test_loader_refuses(engine: wasmtime.Engine, name: str, functions: list[str], message: str) -> None:
    with pytest.raises(ModuleRejected, match=message):
        corpus_plugin(engine, name, functions)


def test_loader_refuses_a_parameter_taking_export(engine: wasmtime.Engine) -> None:
    wat = '(module (memory (export "memory") 1) (func (export "greet") (param i32) (result i32) (i32.const 0)))'
    from worker.sandbox.extism import load_plugin

    with pytest.raises(ModuleRejected, match=r"'greet' is \(i32\) -> \(i32\)"):
        load_plugin(engine, wasmtime.wat2wasm(wat), ref="p", functions=["greet"])
    with pytest.raises(ModuleRejected, match="not a valid WebAssembly module"):
        load_plugin(engine, b"\0asm\1\0\0\0\1\377", ref="p", functions=["greet"])
