"""The chunk result's two shapes: built by the worker, read by the producer (and any other reader)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker import chunk_result
from worker.errors import DeadlineExceeded, InvalidOutput, ModuleTrap, WasmqError
from worker.outcome import public_error
from worker.sandbox.result import CallResult, Usage


def test_lean_counts_a_shared_usage_once_and_reads_back_in_order() -> None:
    shared = Usage(fuel=1000, wall_ms=2.0, memory_bytes=65536)  # one batch call served both
    results = [CallResult("A", shared), ModuleTrap("boom"), CallResult("B", shared), CallResult("C", Usage(5, 1.0))]
    body = chunk_result.build(results, chunk_result.LEAN)
    assert body["outputs"] == ["A", None, "B", "C"]
    assert [i for i, _ in body["errors"]] == [1] and body["errors"][0][1]["type"] == "ModuleTrap"
    assert body["usage"] == {"fuel": 1005, "wall_ms": 3.0, "memory_bytes": 65536, "calls": 2}
    answers = chunk_result.read(json.loads(json.dumps(body)), 4)
    assert not isinstance(answers, str)
    assert answers.outputs == ["A", None, "B", "C"] and answers.usages is None
    assert list(answers.errors) == [1] and answers.errors[1].type == "ModuleTrap"


def test_items_shape_carries_each_usage_and_reads_back() -> None:
    body = chunk_result.build([CallResult("A", Usage(7, 1.0))], chunk_result.ITEMS)
    answers = chunk_result.read(body, 1)
    assert not isinstance(answers, str) and answers.outputs == ["A"] and answers.usages is not None
    assert answers.usages[0]["fuel"] == 7


def test_a_result_that_does_not_answer_every_item_is_said_so() -> None:
    assert chunk_result.read({"outputs": ["A"], "errors": []}, 2) == "chunk answered 1 of 2"
    assert chunk_result.read({"results": []}, 1) == "chunk answered 0 of 1"
    assert "neither" in str(chunk_result.read({"outputs": "A"}, 1))
    assert "chunk answered" in str(chunk_result.read(["junk"], 1))
    odd = chunk_result.read({"outputs": [None, 3, "ok"], "errors": [[0, "not an error"], [9, {}], "x", [True, {}]]}, 3)
    assert not isinstance(odd, str) and odd.outputs == [None, None, "ok"]  # no output, no crash
    assert sorted(odd.errors) == [0, 1] and odd.errors[1].type == "JobFailed"
    entries = chunk_result.read({"results": [{"ok": True, "output": 5}, "junk", {"ok": False}]}, 3)
    assert (
        not isinstance(entries, str) and entries.outputs == [None, None, None] and sorted(entries.errors) == [0, 1, 2]
    )


def test_an_error_wins_over_an_output_for_the_same_item() -> None:
    answers = chunk_result.read({"outputs": ["A", "B"], "errors": [[1, {"type": "ModuleTrap", "message": "x"}]]}, 2)
    assert not isinstance(answers, str) and answers.outputs == ["A", None] and answers.errors[1].type == "ModuleTrap"


def test_a_chunk_its_budget_stopped_answers_the_inputs_it_reached() -> None:
    answers = chunk_result.read({"outputs": ["A"], "errors": [], "unreached": 2}, 3)
    assert not isinstance(answers, str) and answers.outputs == ["A"]
    assert chunk_result.read({"outputs": ["A"], "errors": [], "unreached": 1}, 3) == "chunk answered 1 of 2"
    for claim in (3, -1, "1", True, 1.0, None):
        said = chunk_result.read({"outputs": [], "errors": [], "unreached": claim}, 3)
        assert isinstance(said, str) and "were not reached" in said


def test_the_longest_run_of_a_chunk_is_its_budget_and_one_step() -> None:
    assert chunk_result.longest_run_s(1000, 40, None) == 41.0
    assert chunk_result.longest_run_s(1000, 8000, None) == 8001.0
    assert chunk_result.longest_run_s(1000, 8000, 5.0) == chunk_result.STEP + 1 + 5.0
    assert chunk_result.longest_run_s(20, 10, 2.0) == 0.02 * 11 + 2.0


def per_item_lean(results: list[Any]) -> dict[str, Any]:
    """The lean shape built item by item: the reference the one-pass build must equal."""
    outputs, errors, seen = [], [], {}
    for index, result in enumerate(results):
        if isinstance(result, WasmqError):
            outputs.append(None)
            errors.append([index, public_error(result)])
        else:
            outputs.append(result.output)
            seen.setdefault(id(result.usage), result.usage)
    numbers = [usage.to_dict() for usage in seen.values()]
    wall = 0.0
    for n in numbers:
        wall += n["wall_ms"]
    usage = {"fuel": sum(n["fuel"] for n in numbers), "wall_ms": round(wall, 3), "calls": len(numbers),
             "memory_bytes": max([n["memory_bytes"] for n in numbers], default=0)}  # fmt: skip
    return {"outputs": outputs, "errors": errors, "usage": usage}


BATCH, RERUN, OTHER = Usage(300, 0.1, 65536), Usage(7, 0.2, 131072), Usage(9, 0.30000000000000004)
LEAN_CASES = {
    "empty": [],
    "one batch": [CallResult(f"o{i}", BATCH) for i in range(50)],
    "errors first and last, usages interleaved": [
        InvalidOutput("bad"),
        *[CallResult(o, u) for o, u in [("a", BATCH), ("b", RERUN), ("c", BATCH), ("d", OTHER), ("e", OTHER)]],
        DeadlineExceeded("late"),
    ],
    "only errors": [ModuleTrap("x"), InvalidOutput("y")],
}


@pytest.mark.parametrize("case", list(LEAN_CASES))
def test_the_lean_shape_is_the_item_by_item_one(case: str) -> None:
    results = LEAN_CASES[case]
    assert chunk_result.lean_chunk(results) == per_item_lean(results)
