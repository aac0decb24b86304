"""The batch convention for components (`ComponentRunner.call_many`): one fresh instance per chunk, the
function called once per item in it; after a failing call that instance is dropped and every item from there
on runs alone, so each item still gets its own answer or typed error, in order."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.sandbox.component.conftest import LIMITS, Loader
from worker.errors import InvalidInput, MemoryLimitExceeded, ModuleTrap, WasmqError
from worker.sandbox.component.loader import LoadedComponent
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.result import CallResult
from worker.spec import MIB


@pytest.fixture
def stores(runner: ComponentRunner, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the Stores the runner makes (one entry per store)."""
    made: list[int] = []
    new_store = runner._new_store

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return new_store(*args, **kwargs)

    monkeypatch.setattr(runner, "_new_store", counted)
    return made


def outputs(results: list[CallResult | WasmqError]) -> list[str]:
    return [r.output if isinstance(r, CallResult) else type(r).__name__ for r in results]


def test_a_chunk_of_fifty_runs_in_one_store(
    runner: ComponentRunner, greeting: LoadedComponent, stores: list[int]
) -> None:
    names = [f"name {i} ü" for i in range(50)]
    results = runner.call_many(greeting, "greet", names, LIMITS)
    assert outputs(results) == [f"Hello World, {n}!" for n in names]
    assert len(stores) == 1
    for r in results:
        assert isinstance(r, CallResult) and 0 < r.usage.fuel < LIMITS.fuel


def test_bad_input_in_a_chunk_is_its_own_error(
    runner: ComponentRunner, greeting: LoadedComponent, stores: list[int]
) -> None:
    results = runner.call_many(greeting, "greet", ["a", b"bytes", "c"], LIMITS)
    assert outputs(results) == ["Hello World, a!", "InvalidInput", "Hello World, c!"]
    assert isinstance(results[1], InvalidInput)
    assert len(stores) == 1  # refused before the call: the instance is not touched


def test_a_failing_item_in_the_middle_leaves_the_others_answered(
    runner: ComponentRunner, greeting: LoadedComponent, stores: list[int]
) -> None:
    big = "é" * (MIB // 2)  # 1 MiB in, 1 MiB out: more than a 2 MiB memory holds
    names = ["a", "b", big, "c", "d"]
    results = runner.call_many(greeting, "greet", names, replace(LIMITS, memory_mb=2))
    assert outputs(results) == ["Hello World, a!", "Hello World, b!", "MemoryLimitExceeded", "Hello World, c!",
                                "Hello World, d!"]  # fmt: skip
    assert isinstance(results[2], MemoryLimitExceeded)
    # the chunk's store, then alone: the failing item (and its replay with a larger cap), "c", "d"
    assert len(stores) == 1 + 2 + 1 + 1


def test_a_component_that_always_traps_answers_every_item(runner: ComponentRunner, load: Loader) -> None:
    results = runner.call_many(load.hostile("trap"), "greet", ["a", "b", "c"], LIMITS)
    assert [type(r) for r in results] == [ModuleTrap] * 3


def test_an_empty_chunk_is_an_empty_answer(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    assert runner.call_many(greeting, "greet", [], LIMITS) == []
