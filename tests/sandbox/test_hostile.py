"""Every module in the hostile corpus gets its typed error, and the same Sandbox serves a good call right after.

The deadline cases only check that the call returned with the right error (and within a very generous bound):
machines are shared, so speeds are not asserted.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.sandbox import greeting
from worker.errors import (
    DeadlineExceeded,
    FuelExhausted,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
)
from worker.sandbox import Sandbox

GENEROUS_S = 60.0


@dataclass(frozen=True)
class Case:
    module: str
    function: str
    error: type[WasmqError]
    limits: dict[str, Any] | None = None
    trap_code: str | None = None
    message: str = ""  # a fragment the message must contain (lower case)
    input: str = "Mallory"

    def __str__(self) -> str:
        return f"{self.module}.{self.function}" + (f"{self.limits}" if self.limits else "")


CASES = [
    Case("loop-forever", "greet", DeadlineExceeded, message="deadline"),
    Case("loop-forever", "greet", FuelExhausted, limits={"fuel": 100_000}, message="fuel"),
    Case("start-loop", "greet", DeadlineExceeded, message="deadline"),
    Case("memory-grow", "greet", MemoryLimitExceeded),
    Case("huge-memory", "greet", MemoryLimitExceeded, message="memory"),
    Case("stack-overflow", "greet", ModuleTrap, trap_code="stack_overflow"),
    Case("trap", "greet", ModuleTrap, trap_code="unreachable"),
    Case("trap", "divide", ModuleTrap, trap_code="integer_division_by_zero"),
    Case("out-of-bounds", "greet", InvalidOutput, message="outside"),
    Case("past-end", "greet", InvalidOutput, message="outside"),
    Case("wrap-around", "greet", InvalidOutput),
    Case("wrap-around", "wrap2", InvalidOutput, message="wraps around"),
    Case("invalid-utf8", "greet", InvalidOutput, message="utf-8"),
    Case("oversize-output", "greet", InvalidOutput, message="over the limit"),
    Case("bad-alloc", "greet", InvalidOutput, message="alloc"),
    Case("missing-export", "greet", ModuleRejected, message="does not export 'greet'"),
    Case("wrong-signature", "greet", ModuleRejected, message="signature"),
    Case("forbidden-import", "greet", ModuleRejected, message="env.steal"),
    Case("malformed", "greet", ModuleRejected, message="not valid webassembly"),
    Case("tampered", "greet", ModuleRejected, message="sha256"),
    Case("seed-rust-bad-record", "wasm_memory_rust_format_hello_world", InvalidOutput, message="record"),
    Case("seed-rust-bad-record", "bad_string", InvalidOutput),
    Case("seed-c-no-nul", "wasm_memory_c_format_hello_world", InvalidOutput, message="nul"),
    Case("wasi-probe", "exit_now", ModuleTrap, trap_code="exit"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_gets_typed_error_then_sandbox_still_works(sandbox: Sandbox, case: Case) -> None:
    started = time.monotonic()
    with pytest.raises(case.error) as info:
        sandbox.call(case.module, case.function, case.input, case.limits)
    assert time.monotonic() - started < GENEROUS_S  # it returned: the sandbox stopped the module

    err = info.value
    assert type(err) is case.error
    assert case.message in err.message.lower()
    if case.trap_code is not None:
        assert err.details["trap_code"] == case.trap_code
    data = err.to_dict()
    assert data["type"] == case.error.type
    assert isinstance(data["message"], str) and data["message"]
    assert data["retryable"] is case.error.retryable
    if case.error is not ModuleRejected:  # a rejected module never ran, so it used nothing
        assert set(data["usage"]) == {"fuel", "wall_ms", "memory_bytes"}

    after = sandbox.call("greeting", "greet", "Alice")
    assert after.output == greeting("Alice")


def test_fuel_exhaustion_reports_the_whole_budget_used(sandbox: Sandbox) -> None:
    with pytest.raises(FuelExhausted) as info:
        sandbox.call("loop-forever", "greet", "x", {"fuel": 50_000})
    assert info.value.details["usage"]["fuel"] == 50_000
    assert not info.value.retryable


def test_deadline_is_retryable_and_a_shorter_deadline_is_honoured(sandbox: Sandbox) -> None:
    with pytest.raises(DeadlineExceeded) as info:
        sandbox.call("loop-forever", "greet", "x", {"timeout_ms": 50})
    assert info.value.retryable
    assert "50 ms" in info.value.message


def test_proc_exit_carries_the_exit_code(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrap) as info:
        sandbox.call("wasi-probe", "exit_now", "")
    assert info.value.details["exit_code"] == 3


def test_memory_cap_message_names_the_cap(sandbox: Sandbox) -> None:
    with pytest.raises(MemoryLimitExceeded) as info:
        sandbox.call("huge-memory", "greet", "x")
    assert str(16 * 1024 * 1024) in info.value.message


def test_a_smaller_memory_cap_refuses_the_greeting_module_cleanly(sandbox: Sandbox) -> None:
    # 900 kB of input cannot be copied in and greeted within 1 MiB: some typed error, never a bogus answer.
    with pytest.raises(WasmqError) as info:
        sandbox.call("greeting", "greet", "a" * 900_000, {"memory_mb": 1})
    assert info.value.type in {"MemoryLimitExceeded", "ModuleTrap", "InvalidOutput"}


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("greeting", "greet"),
        ("greeting-c", "greet"),
        ("greeting", "wasm_memory_rust_format_hello_world"),
        ("greeting", "wasm_memory_c_format_hello_world"),
        ("greeting-c", "wasm_memory_c_format_hello_world"),
    ],
)
def test_module_out_of_memory_is_an_error_not_an_empty_answer(sandbox: Sandbox, module: str, function: str) -> None:
    # The input fits under a 1 MiB cap but the input and the answer together do not: the module's allocator
    # fails and the module says so (a null answer). That must be a typed error, never a successful "".
    for size in (400_000, 600_000):
        try:
            result = sandbox.call(module, function, "a" * size, {"memory_mb": 1})
        except WasmqError as exc:
            assert exc.type in {"MemoryLimitExceeded", "ModuleTrap", "InvalidOutput"}
        else:
            assert result.output == greeting("a" * size)
    assert sandbox.call(module, function, "Alice").output == greeting("Alice")


def test_rejected_module_fails_fast_each_time_with_a_fresh_error(sandbox: Sandbox) -> None:
    errors = []
    for _ in range(3):
        with pytest.raises(ModuleRejected) as info:
            sandbox.call("malformed", "greet", "x")
        errors.append(info.value)
    assert len({id(e) for e in errors}) == 3  # a cached instance would pile up tracebacks across calls
    assert len({e.message for e in errors}) == 1
    depth = [len(list(traceback.walk_tb(e.__traceback__))) for e in errors]
    assert depth[0] == depth[1] == depth[2]
