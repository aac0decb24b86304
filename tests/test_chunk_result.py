"""The chunk result's two shapes: built by the worker, read by the producer (and any other reader)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker import chunk_result
from worker.errors import DeadlineExceeded, InvalidOutput, ModuleTrap, WasmqError
from worker.outcome import public_error
from worker.sandbox.result import CallResult, Usage

META = {"worker": "w@h", "attempt": 1}


def test_lean_counts_a_shared_usage_once_and_reads_back_in_order() -> None:
    shared = Usage(fuel=1000, wall_ms=2.0, memory_bytes=65536)  # one batch call served both
    results = [CallResult("A", shared), ModuleTrap("boom"), CallResult("B", shared), CallResult("C", Usage(5, 1.0))]
    body = chunk_result.build(results, chunk_result.LEAN)
    assert body["outputs"] == ["A", None, "B", "C"]
    assert [i for i, _ in body["errors"]] == [1] and body["errors"][0][1]["type"] == "ModuleTrap"
    assert body["usage"] == {"fuel": 1005, "wall_ms": 3.0, "memory_bytes": 65536, "calls": 2}
    outcomes = chunk_result.read(json.loads(json.dumps(body)), 4, META)
    assert not isinstance(outcomes, str)
    assert [o.output for o in outcomes] == ["A", None, "B", "C"]
    assert outcomes[1].error is not None and outcomes[1].error.type == "ModuleTrap"
    assert all(o.meta == META for o in outcomes)


def test_items_shape_carries_each_usage_and_reads_back() -> None:
    body = chunk_result.build([CallResult("A", Usage(7, 1.0))], chunk_result.ITEMS)
    outcomes = chunk_result.read(body, 1, META)
    assert not isinstance(outcomes, str) and outcomes[0].usage["fuel"] == 7


def test_a_result_that_does_not_answer_every_item_is_said_so() -> None:
    assert chunk_result.read({"outputs": ["A"], "errors": []}, 2, META) == "chunk answered 1 of 2"
    assert chunk_result.read({"results": []}, 1, META) == "chunk answered 0 of 1"
    assert "neither" in str(chunk_result.read({"outputs": "A"}, 1, META))
    assert "chunk answered" in str(chunk_result.read(["junk"], 1, META))
    odd = chunk_result.read({"outputs": [None, 3], "errors": [[0, "not an error"], [9, {}], "x"]}, 2, META)
    assert not isinstance(odd, str) and [o.ok for o in odd] == [False, False]  # no output, no crash


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
