"""Bad requests are refused with ModuleNotFound or InvalidInput before (or instead of) running anything."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import InvalidInput, ModuleNotFound, WasmqError
from worker.sandbox import Sandbox
from worker.spec import MIB


def _check_shape(err: WasmqError, type_: str) -> None:
    data = err.to_dict()
    assert data["type"] == type_
    assert isinstance(data["message"], str) and data["message"]
    assert data["retryable"] is False


@pytest.mark.parametrize("ref", ["no-such-module", "greeting@9.9.9", "@1.0.0", "Greeting", ""])
def test_unknown_module_or_version(sandbox: Sandbox, ref: str) -> None:
    with pytest.raises(ModuleNotFound) as info:
        sandbox.call(ref, "greet", "Alice")
    _check_shape(info.value, "ModuleNotFound")


def test_unknown_version_lists_the_known_ones(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleNotFound) as info:
        sandbox.call("greeting@2.0.0", "greet", "Alice")
    assert "1.0.0" in info.value.message


def test_unknown_function(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput) as info:
        sandbox.call("greeting", "shout", "Alice")
    assert "shout" in info.value.message
    _check_shape(info.value, "InvalidInput")


@pytest.mark.parametrize(
    "limits",
    [
        {"fuel": 100_000_001},
        {"timeout_ms": 1_001},
        {"memory_mb": 65},
        {"max_input_bytes": MIB + 1},
        {"max_output_bytes": MIB + 1},
        {"fuel": 0},
        {"fuel": -5},
        {"fuel": True},
        {"fuel": 1.5},
        {"fuel": "100"},
        {"cpu": 1},
    ],
    ids=repr,
)
def test_bad_limits(sandbox: Sandbox, limits: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        sandbox.call("greeting", "greet", "Alice", limits)
    _check_shape(info.value, "InvalidInput")


def test_limits_at_the_maximum_or_below_or_none_are_fine(sandbox: Sandbox) -> None:
    for limits in ({"fuel": 100_000_000, "memory_mb": 64}, {"timeout_ms": 500}, {"fuel": None}, {}, None):
        assert sandbox.call("greeting", "greet", "Alice", limits).output == "Hello World, Alice!"


@pytest.mark.parametrize("value", [b"Alice", 42, None, ["Alice"], {"name": "Alice"}], ids=repr)
def test_non_string_input(sandbox: Sandbox, value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        sandbox.call("greeting", "greet", value)
    _check_shape(info.value, "InvalidInput")


def test_lone_surrogate_input(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="UTF-8"):
        sandbox.call("greeting", "greet", "a\ud800b")


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_oversize_input(sandbox: Sandbox, module: str) -> None:
    with pytest.raises(InvalidInput, match="over the limit"):
        sandbox.call(module, "greet", "a" * (MIB + 1))
    with pytest.raises(InvalidInput, match="over the limit"):
        sandbox.call(module, "greet", "é" * 6, {"max_input_bytes": 11})  # 12 bytes of UTF-8
    assert sandbox.call(module, "greet", "é" * 6, {"max_input_bytes": 12}).output == f"Hello World, {'é' * 6}!"


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_nul_in_seed_c_input(sandbox: Sandbox, module: str) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        sandbox.call(module, "wasm_memory_c_format_hello_world", "Al\0ice")
    # the length-carrying ABIs take a NUL like any other byte
    assert sandbox.call(module, "greet", "Al\0ice").output == "Hello World, Al\0ice!"


def test_scalar_takes_no_input(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput):
        sandbox.call("greeting", "answer", "something")


def test_output_limit_is_enforced(sandbox: Sandbox) -> None:
    assert sandbox.call("greeting", "greet", "Alice", {"max_output_bytes": 19}).output == "Hello World, Alice!"
    for function in ("greet", "wasm_memory_rust_format_hello_world", "wasm_memory_c_format_hello_world"):
        with pytest.raises(WasmqError) as info:
            sandbox.call("greeting", function, "Alice", {"max_output_bytes": 18})
        assert info.value.type == "InvalidOutput"
