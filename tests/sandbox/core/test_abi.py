"""Every ABI of both greeting modules gives the same greeting; scalar and batch calls work too."""

from __future__ import annotations

import pytest

from tests.support.sandbox import GREETERS, greeting
from worker.errors import WasmqError
from worker.sandbox import CallResult, Sandbox, Usage

NAMES = ["Alice", "", "Zoë", "Ünïcödé 🌍", "日本語の名前", "a b\tc", "x" * 10_000]


@pytest.mark.parametrize(("module", "function"), GREETERS)
@pytest.mark.parametrize("name", NAMES, ids=lambda n: repr(n[:12]))
def test_every_abi_greets(sandbox: Sandbox, module: str, function: str, name: str) -> None:
    result = sandbox.call(module, function, name)
    assert isinstance(result, CallResult)
    assert result.output == greeting(name)
    assert isinstance(result.usage, Usage)
    assert result.usage.fuel > 0
    assert result.usage.memory_bytes > 0
    assert result.usage.wall_ms >= 0


def test_the_abis_agree_with_each_other(sandbox: Sandbox) -> None:
    outputs = {(m, f): sandbox.call(m, f, "Alice").output for m, f in GREETERS}
    assert set(outputs.values()) == {"Hello World, Alice!"}


def test_versioned_reference_resolves(sandbox: Sandbox) -> None:
    assert sandbox.call("greeting@1.0.0", "greet", "Bob").output == "Hello World, Bob!"
    assert sandbox.call("greeting-c@1.0.0", "greet", "Bob").output == "Hello World, Bob!"


def test_scalar_answer(sandbox: Sandbox) -> None:
    result = sandbox.call("greeting", "answer", "")
    assert result.output == "42"
    assert result.usage.fuel > 0


def test_result_to_dict_shape(sandbox: Sandbox) -> None:
    data = sandbox.call("greeting", "greet", "Alice").to_dict()
    assert data["output"] == "Hello World, Alice!"
    assert set(data["usage"]) == {"fuel", "wall_ms", "memory_bytes"}


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_batch_matches_single_calls(sandbox: Sandbox, module: str) -> None:
    names = ["Alice", "", "Zoë", "🌍", "Bob", *(f"n{i}" for i in range(50))]
    results = sandbox.call_many(module, "greet", names)
    assert len(results) == len(names)
    for name, result in zip(names, results, strict=True):
        assert isinstance(result, CallResult), result
        assert result.output == greeting(name)
        assert result.output == sandbox.call(module, "greet", name).output


@pytest.mark.parametrize(("module", "function"), GREETERS)
def test_call_many_without_batch_export_or_with_one_item(sandbox: Sandbox, module: str, function: str) -> None:
    assert [r.output for r in sandbox.call_many(module, function, ["Eve"])] == ["Hello World, Eve!"]  # type: ignore[union-attr]
    results = sandbox.call_many(module, function, ["Eve", "Mallory"])
    assert [r.output for r in results if isinstance(r, CallResult)] == ["Hello World, Eve!", "Hello World, Mallory!"]


def test_call_many_empty(sandbox: Sandbox) -> None:
    assert sandbox.call_many("greeting", "greet", []) == []


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_batch_keeps_order_and_types_bad_items(sandbox: Sandbox, module: str) -> None:
    inputs: list[object] = ["a", 42, "b", "\ud800", "c", None, "x" * 2000]
    results = sandbox.call_many(module, "greet", inputs, {"max_input_bytes": 1000})
    assert len(results) == len(inputs)
    kinds = [r.type if isinstance(r, WasmqError) else r.output for r in results]
    assert kinds == [
        "Hello World, a!",
        "InvalidInput",
        "Hello World, b!",
        "InvalidInput",
        "Hello World, c!",
        "InvalidInput",
        "InvalidInput",
    ]
