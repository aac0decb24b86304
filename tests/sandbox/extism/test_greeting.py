"""The AssemblyScript greeting plugin (modules/greeting_extism), built by the real toolchain, on our kernel."""

from __future__ import annotations

import json

import pytest

from tests.sandbox.extism.conftest import LIMITS
from worker.errors import InvalidInput, InvalidOutput, ModuleRejected, ModuleTrap
from worker.sandbox.extism import ExtismPlugin, ExtismRunner


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "Hello World, Alice!"),
        ("Zoë", "Hello World, Zoë!"),
        ("José", "Hello World, José!"),
        ("日本語", "Hello World, 日本語!"),
        ("🦀 crab", "Hello World, 🦀 crab!"),
    ],
)
def test_greets_in_utf8(runner: ExtismRunner, greeting: ExtismPlugin, name: str, expected: str) -> None:
    output, usage = runner.call(greeting, "greet", name, **LIMITS)
    assert output == expected
    assert usage.fuel > 0 and usage.memory_bytes >= 65536 and usage.block_bytes > 0
    assert usage.logs == [{"level": "info", "message": f"greeting {len(name.encode('utf-16-le')) // 2} UTF-16 units"}]


def test_bytes_input_is_taken_as_is(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    assert runner.call(greeting, "greet", "Zoë".encode(), **LIMITS)[0] == "Hello World, Zoë!"


def test_config_replaces_the_greeting(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    output, _ = runner.call(greeting, "greet", "José", config={"greeting": "¡Hola"}, **LIMITS)
    assert output == "¡Hola, José!"
    assert runner.call(greeting, "greet", "José", **LIMITS)[0] == "Hello World, José!"  # config is per call


def test_error_set_fails_the_call_with_the_plugins_message(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    with pytest.raises(ModuleTrap) as caught:
        runner.call(greeting, "greet", "", **LIMITS)
    assert caught.value.details["trap_code"] == "plugin_error"
    assert str(caught.value) == "plugin error: greet: the name must not be empty"
    json.dumps(caught.value.to_dict())  # a job result: JSON all the way down


def test_output_cap(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    with pytest.raises(InvalidOutput, match="over the limit of 10"):
        runner.call(greeting, "greet", "Alice", **{**LIMITS, "max_output_bytes": 10})


def test_input_checks(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    with pytest.raises(InvalidInput, match="over the limit of 4"):
        runner.call(greeting, "greet", "Alice", max_input_bytes=4, **LIMITS)
    with pytest.raises(InvalidInput, match="lone surrogate"):
        runner.call(greeting, "greet", "\ud800", **LIMITS)
    with pytest.raises(InvalidInput, match="bytes or a string"):
        runner.call(greeting, "greet", 42, **LIMITS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="memory cap"):
        runner.call(greeting, "greet", b"x" * 2000, max_input_bytes=4000, **{**LIMITS, "memory_bytes": 1024})


def test_unchecked_function_is_refused(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    with pytest.raises(ModuleRejected, match="not checked at load time"):
        runner.call(greeting, "count_vowels", "Alice", **LIMITS)


def test_imports_are_the_kernel_only(greeting: ExtismPlugin) -> None:
    modules = {imp.module for imp in greeting.module.imports}
    assert modules == {"extism:host/env"}
    assert not greeting.needs_wasi and greeting.returns_rc == {"greet": True}


def test_one_call_at_a_time_per_runner(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    """A runner's kernel functions read the running call from its slot: a second call at once is refused."""
    from worker.sandbox.extism.state import CallLimits, CallState

    busy = CallState({}, CallLimits(), lambda caller, units: True)
    with runner._slot.running(busy), pytest.raises(RuntimeError, match="one runner per thread"):
        runner.call(greeting, "greet", "Alice", **LIMITS)
    assert runner.call(greeting, "greet", "Alice", **LIMITS)[0] == "Hello World, Alice!"


def test_runners_in_threads(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    """One runner per thread, many threads: every answer is its own call's (wasm calls release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    runners = [ExtismRunner(runner.engine, runner.ticker, fast=runner.fast) for _ in range(4)]

    def work(index: int) -> list[str]:
        return [runners[index].call(greeting, "greet", f"n{index}-{i}", **LIMITS)[0] for i in range(30)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    assert results == [[f"Hello World, n{t}-{i}!" for i in range(30)] for t in range(4)]


def test_memory_cap_inside_the_plugin(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    """The plugin's allocator hits the cap (memory.grow refused, its abort traps): MemoryLimitExceeded."""
    from worker.errors import MemoryLimitExceeded

    with pytest.raises(MemoryLimitExceeded):
        runner.call(greeting, "greet", "x" * 40_000, **{**LIMITS, "memory_bytes": 128 * 1024})
    assert runner.call(greeting, "greet", "x" * 40_000, **LIMITS)[0] == f"Hello World, {'x' * 40_000}!"


@pytest.mark.parametrize("size", [64_000, 70_000, 300_000])  # one kernel page, two (one copy), five (two copies)
def test_inputs_past_the_kernels_first_page(runner: ExtismRunner, greeting: ExtismPlugin, size: int) -> None:
    """The host grows the kernel's memory to hold the input before writing it; the kernel sees every byte."""
    name = "é" + "x" * (size - 4) + "!"
    assert runner.call(greeting, "greet", name, **LIMITS)[0] == f"Hello World, {name}!"


def test_an_input_the_kernel_cannot_grow_for(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    """Under the cap counted in bytes, but its block needs a second kernel page past the cap: refused, typed."""
    from worker.errors import MemoryLimitExceeded

    with pytest.raises(MemoryLimitExceeded, match="kernel's memory cannot grow") as caught:
        runner.call(greeting, "greet", b"x" * 98_000, **{**LIMITS, "memory_bytes": 100_000})
    assert caught.value.details["limit"] == "kernel_blocks"
