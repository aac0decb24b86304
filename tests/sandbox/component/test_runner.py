"""The component ABI on real components: the greeting, the hostile corpus (each failure gets its typed error and
the same engine serves a good call right after), the export and import checks, and every branch of the one
function that classifies component failures.

Deadline cases only check the error, never a speed: machines are shared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
import wasmtime

from tests.sandbox.component.conftest import GREETING_DIR, HOSTILE_DIR, LIMITS, ROOT, Loader
from worker.errors import (
    DeadlineExceeded,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    MemoryLimitExceeded,
    ModuleRejected,
    ModuleTrap,
    WasmqError,
)
from worker.sandbox.component.loader import LoadedComponent, compile_component
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.component.traps import TRAP_TEXTS, CallFacts, classify_component_error, root_cause, trap_code_of
from worker.sandbox.component.wit import load_world
from worker.sandbox.engine import EpochTicker
from worker.spec import MIB


def check_greets(runner: ComponentRunner, greeting: LoadedComponent, name: str = "Alice") -> None:
    assert runner.call(greeting, "greet", name, LIMITS).output == f"Hello World, {name}!"


# -- the greeting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Alice", "", "Zoë 🌍", "a\x00b", "名前"])
def test_greets(runner: ComponentRunner, greeting: LoadedComponent, name: str) -> None:
    result = runner.call(greeting, "greet", name, LIMITS)
    assert result.output == f"Hello World, {name}!"
    assert 0 < result.usage.fuel < LIMITS.fuel
    assert result.usage.wall_ms > 0
    assert result.usage.memory_bytes == 65536  # the one page greeting.wat declares (test_meter.py: more)
    assert result.to_dict() == {"output": result.output, "usage": result.usage.to_dict()}
    assert set(result.usage.to_dict()) == {"fuel", "wall_ms", "memory_bytes"}


def test_one_mib_name_is_within_limits(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    name = "é" * (MIB // 2)  # exactly 1 MiB of UTF-8
    result = runner.call(greeting, "greet", name, LIMITS)
    assert result.output == f"Hello World, {name}!"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("x" * (MIB + 1), "over the limit"),
        (b"Alice", "must be a string"),
        (None, "must be a string"),
        ("\ud800", "utf-8"),
    ],
    ids=["oversize", "bytes", "none", "lone-surrogate"],
)
def test_bad_input_is_invalid_input(
    runner: ComponentRunner, greeting: LoadedComponent, value: object, fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=f"(?i){fragment}"):
        runner.call(greeting, "greet", value, LIMITS)
    check_greets(runner, greeting)


def test_output_over_the_limit_is_invalid_output(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    with pytest.raises(InvalidOutput, match="over the limit") as info:
        runner.call(greeting, "greet", "Alice", replace(LIMITS, max_output_bytes=10))
    assert info.value.details["usage"]["fuel"] > 0


def test_every_call_gets_a_fresh_instance(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    """The greeting's bump allocator would drift between calls sharing an instance; fuel shows it does not."""
    fuels = {runner.call(greeting, "greet", "Alice", LIMITS).usage.fuel for _ in range(20)}
    assert len(fuels) == 1


def test_fuel_and_memory_limits_apply_to_the_greeting(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    with pytest.raises(FuelExhausted):
        runner.call(greeting, "greet", "x" * 100_000, replace(LIMITS, fuel=50))
    # 1 MiB in + 1 MiB out does not fit in a 1 MiB memory: the allocator's grow is refused, it aborts.
    with pytest.raises(MemoryLimitExceeded):
        runner.call(greeting, "greet", "x" * MIB, replace(LIMITS, memory_mb=1))
    check_greets(runner, greeting)


# -- the hostile corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    component: str
    error: type[WasmqError]
    limits: dict[str, Any] | None = None
    message: str = ""  # a fragment the message must contain (lower case)
    trap_code: str | None = None


CASES = [
    Case("loop_forever", FuelExhausted, {"fuel": 1_000_000}, "fuel budget of 1000000"),
    Case("loop_forever", DeadlineExceeded, {"fuel": 10**13, "timeout_ms": 100}, "deadline of 100 ms"),
    Case("trap", ModuleTrap, message="unreachable", trap_code="unreachable"),
    Case("divide_by_zero", ModuleTrap, message="divide by zero", trap_code="integer_division_by_zero"),
    Case("spin_then_trap", ModuleTrap, message="unreachable", trap_code="unreachable"),
    Case("memory_grow", MemoryLimitExceeded, {"memory_mb": 4}, "refused to grow", trap_code="unreachable"),
    Case("huge_memory", MemoryLimitExceeded, message="memory minimum size of 2048 pages"),
    Case("out_of_bounds", InvalidOutput, message="string pointer/length out of bounds"),
    Case("wrap_around", InvalidOutput, message="string pointer/length out of bounds"),
    Case("bad_retptr", InvalidOutput, message="pointer out of bounds"),
    Case("invalid_utf8", InvalidOutput, message="invalid utf-8"),
    Case("oversize_output", InvalidOutput, {"max_output_bytes": MIB}, "over the limit of 1048576"),
    Case("bad_realloc", InvalidOutput, message="realloc"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.component}-{c.error.type}")
def test_hostile_component(runner: ComponentRunner, load: Loader, greeting: LoadedComponent, case: Case) -> None:
    limits = replace(LIMITS, **(case.limits or {}))
    started = time.perf_counter()
    with pytest.raises(case.error) as info:
        runner.call(load.hostile(case.component), "greet", "Mallory", limits)
    assert time.perf_counter() - started < 30
    err = info.value
    assert type(err) is case.error
    assert case.message in err.message.lower()
    if case.trap_code is not None:
        assert err.details["trap_code"] == case.trap_code
    assert set(err.details["usage"]) == {"fuel", "wall_ms", "memory_bytes"}
    assert err.to_dict()["type"] == case.error.type
    check_greets(runner, greeting)  # the same engine, ticker and runner serve a good call right after


def test_deadline_is_retryable(runner: ComponentRunner, load: Loader) -> None:
    """No lower bound on the time is asserted: a ticker starved before the call catches up at once."""
    with pytest.raises(DeadlineExceeded) as info:
        runner.call(load.hostile("loop_forever"), "greet", "x", replace(LIMITS, fuel=10**13, timeout_ms=50))
    assert info.value.retryable
    assert info.value.details["usage"]["wall_ms"] > 0


def test_without_the_replay_a_memory_cap_abort_is_a_plain_trap(
    engine: tuple[wasmtime.Engine, EpochTicker], load: Loader
) -> None:
    """The replay is what tells a refused memory.grow from any other abort."""
    plain = ComponentRunner(*engine, replay_traps=False)
    with pytest.raises(ModuleTrap):
        plain.call(load.hostile("memory_grow"), "greet", "x", replace(LIMITS, memory_mb=4))


def test_a_component_with_more_memories_than_allowed_fails_cleanly(
    engine: tuple[wasmtime.Engine, EpochTicker], load: Loader, greeting: LoadedComponent
) -> None:
    strict = ComponentRunner(*engine, max_memories=0)
    with pytest.raises(ModuleTrap, match="instantiation") as info:
        strict.call(greeting, "greet", "x", LIMITS)
    assert info.value.details["trap_code"] == "instantiation"


# -- load-time checks --------------------------------------------------------------------------------


def test_wrong_signature_is_rejected(load: Loader) -> None:
    with pytest.raises(ModuleRejected, match=r"export 'greet' is func\(u32\) -> u32, .* declares func\(string\)"):
        load(HOSTILE_DIR / "wrong_signature.wasm")


def test_a_world_the_host_cannot_call_is_rejected(load: Loader) -> None:
    numeric = load_world(HOSTILE_DIR / "wrong_signature.wit", "numeric-greeter")
    with pytest.raises(ModuleRejected, match=r"calls only func\(string\) -> string"):
        load(HOSTILE_DIR / "wrong_signature.wasm", world=numeric)


def test_a_component_with_imports_is_rejected(load: Loader) -> None:
    with pytest.raises(ModuleRejected, match=r"imports \['log'\]; components may import only wasi: interfaces"):
        load(HOSTILE_DIR / "with_import.wasm")


def test_a_world_with_imports_is_rejected(load: Loader) -> None:
    logging = load_world(HOSTILE_DIR / "with_import.wit", "logging-greeter")
    with pytest.raises(ModuleRejected, match="world wasmq:hostile-with-import/logging-greeter imports"):
        load(HOSTILE_DIR / "with_import.wasm", world=logging)


def test_a_function_inside_an_interface_is_not_the_world_function(load: Loader) -> None:
    with pytest.raises(
        ModuleRejected, match="exports function 'greet', the component exports it as a ComponentInstance"
    ):
        load(HOSTILE_DIR / "interface_export.wasm")


def test_a_function_the_world_lacks_is_rejected(load: Loader) -> None:
    with pytest.raises(ModuleRejected, match="does not export a function 'farewell'"):
        load(GREETING_DIR / "greeting_component.wasm", functions=("farewell",))


def test_a_core_module_is_not_a_component(engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    core = (ROOT / "modules" / "greeting" / "greeting.wasm").read_bytes()
    with pytest.raises(ModuleRejected, match=r"not a valid WebAssembly component \(its header is a core module's"):
        compile_component(engine[0], core, ref="greeting")


@pytest.mark.parametrize(
    "data", [b"", b"not wasm at all", (HOSTILE_DIR / "trap.wasm").read_bytes()[:40]], ids=["empty", "text", "cut"]
)
def test_bytes_that_are_not_a_component_are_rejected(engine: tuple[wasmtime.Engine, EpochTicker], data: bytes) -> None:
    with pytest.raises(ModuleRejected, match="is not a valid WebAssembly component: ") as info:
        compile_component(engine[0], data, ref="junk")
    assert "core module" not in info.value.message


def test_an_unchecked_function_is_refused_at_call_time(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    with pytest.raises(ModuleRejected, match="not checked"):
        runner.call(greeting, "farewell", "x", LIMITS)


# -- classify_component_error, branch by branch ------------------------------------------------------

FACTS = CallFacts(phase="call", fuel=1000, fuel_left=500, elapsed_ms=1.0, timeout_ms=100, memory_cap=4 * MIB)


def wasmtime_error(cause: str) -> wasmtime.WasmtimeError:
    """An error shaped like wasmtime's component call errors: a backtrace, then the root cause."""
    return wasmtime.WasmtimeError(
        f"error while executing at wasm backtrace:\n    0:     0x71 - <unknown>!<wasm function 1>\n\n"
        f"Caused by:\n    {cause}\n"
    )


def test_the_trap_table_comes_from_wasmtime_and_is_complete() -> None:
    assert set(TRAP_TEXTS.values()) == set(wasmtime.TrapCode)
    assert TRAP_TEXTS["wasm trap: all fuel consumed by WebAssembly"] is wasmtime.TrapCode.OUT_OF_FUEL
    assert TRAP_TEXTS["wasm trap: interrupt"] is wasmtime.TrapCode.INTERRUPT


def test_root_cause_and_trap_code_of() -> None:
    err = wasmtime_error("wasm trap: integer divide by zero")
    assert root_cause(err) == "wasm trap: integer divide by zero"
    assert trap_code_of(err) is wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO
    assert trap_code_of(wasmtime.WasmtimeError("string pointer/length out of bounds of memory")) is None
    assert root_cause(wasmtime.WasmtimeError("")) == "no message"


def test_passes_our_errors_through_and_leaves_host_bugs_alone() -> None:
    ours = InvalidInput("x")
    assert classify_component_error(ours, FACTS) is ours
    assert classify_component_error(ValueError("host bug"), FACTS) is None


def core_trap(engine: wasmtime.Engine, wat: str, fuel: int, ticks: int) -> wasmtime.Trap:
    """A real `wasmtime.Trap` (core modules do carry a trap code)."""
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    store.set_epoch_deadline(ticks)
    func = wasmtime.Instance(store, wasmtime.Module(engine, wat), []).exports(store)["run"]
    assert isinstance(func, wasmtime.Func)
    with pytest.raises(wasmtime.Trap) as info:
        func(store)
    return info.value


SPIN = '(module (func (export "run") (loop $l (br $l))))'


def test_structured_trap_codes_decide(engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    out_of_fuel = core_trap(engine[0], SPIN, fuel=10_000, ticks=10**6)
    assert out_of_fuel.trap_code is wasmtime.TrapCode.OUT_OF_FUEL
    assert isinstance(classify_component_error(out_of_fuel, FACTS), FuelExhausted)
    interrupted = core_trap(engine[0], SPIN, fuel=10**13, ticks=2)
    assert isinstance(classify_component_error(interrupted, FACTS), DeadlineExceeded)
    unreachable = core_trap(engine[0], '(module (func (export "run") unreachable))', fuel=100, ticks=10**6)
    err = classify_component_error(unreachable, FACTS)
    assert isinstance(err, ModuleTrap) and err.details["trap_code"] == "unreachable"


def test_known_trap_texts_decide() -> None:
    assert isinstance(
        classify_component_error(wasmtime_error("wasm trap: all fuel consumed by WebAssembly"), FACTS), FuelExhausted
    )
    assert isinstance(classify_component_error(wasmtime_error("wasm trap: interrupt"), FACTS), DeadlineExceeded)
    # a known code wins over the facts: this trap happened with no fuel left and past the deadline, still a trap
    late = replace(FACTS, fuel_left=0, elapsed_ms=500.0)
    err = classify_component_error(wasmtime_error("wasm trap: wasm `unreachable` instruction executed"), late)
    assert isinstance(err, ModuleTrap) and err.details["trap_code"] == "unreachable"


@pytest.mark.parametrize("cause", ["wasm trap: a wording from a future wasmtime", "something else entirely"])
def test_unrecognised_texts_fall_back_on_the_facts(cause: str) -> None:
    err = wasmtime_error(cause)
    assert isinstance(classify_component_error(err, replace(FACTS, fuel_left=0)), FuelExhausted)
    assert isinstance(classify_component_error(err, replace(FACTS, elapsed_ms=100.0)), DeadlineExceeded)
    neither = classify_component_error(err, FACTS)
    if cause.startswith("wasm trap:"):
        assert isinstance(neither, ModuleTrap) and neither.details["trap_code"] == "unknown"
    else:  # not a trap, raised while calling: the canonical ABI refused something
        assert isinstance(neither, InvalidOutput)


def test_memory_minimum_above_the_cap_at_instantiation() -> None:
    err = wasmtime.WasmtimeError("memory minimum size of 2048 pages exceeds memory limits")
    got = classify_component_error(err, replace(FACTS, phase="instantiate"))
    assert isinstance(got, MemoryLimitExceeded) and "4194304" in got.message


@pytest.mark.parametrize(
    "cause",
    [
        "string pointer/length out of bounds of memory",
        "pointer out of bounds of memory",
        "invalid utf-8 sequence of 1 bytes from index 6",
        "realloc return: beyond end of memory",
        "return pointer not aligned",
    ],
)
def test_canonical_abi_failures(cause: str) -> None:
    err = wasmtime.WasmtimeError(cause)
    got = classify_component_error(err, FACTS)
    assert isinstance(got, InvalidOutput) and cause in got.message
    # the ABI is only involved in a call: the same text at instantiation is a failed instantiation
    at_start = classify_component_error(err, replace(FACTS, phase="instantiate"))
    assert isinstance(at_start, ModuleTrap) and at_start.details["trap_code"] == "instantiation"


@pytest.mark.parametrize(
    ("mattered", "expected"), [(True, MemoryLimitExceeded), (False, ModuleTrap), (None, ModuleTrap)]
)
def test_the_replay_verdict_decides_between_memory_cap_and_trap(mattered: bool | None, expected: type) -> None:
    err = wasmtime_error("wasm trap: wasm `unreachable` instruction executed")
    got = classify_component_error(err, replace(FACTS, memory_mattered=mattered))
    assert type(got) is expected
    assert got is not None and got.details["trap_code"] == "unreachable"
